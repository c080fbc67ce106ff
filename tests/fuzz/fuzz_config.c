/* fuzz_config — libFuzzer target for the configuration loader (daemon/config.c).
 *
 * The input is the text of a vemd configuration file, loaded without touching the filesystem
 * (vem_config_parse). A refusal must say what is wrong, naming the input; an accepted
 * configuration must print (--print-config) as a file that loads again to the same
 * configuration, printed the same: what vemd writes as the example it must also read.
 * Inputs with an @include are skipped, so the fuzzer never reads files of the machine. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* cfg as --print-config writes it; caller frees. */
static char *s_print(const vem_config_t *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out || vem_config_print(cfg, out) != 0)
        abort();
    fclose(out);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    if (strstr(text, "@include")) {
        free(text);
        return 0;
    }
    char err[1024] = "";
    vem_config_t *cfg = vem_config_parse(text, "fuzz.cfg", err, sizeof err);
    free(text);
    if (!cfg) {
        if (strncmp(err, "fuzz.cfg", 8) != 0)
            abort(); /* every refusal names the file */
        return 0;
    }
    char *printed = s_print(cfg);
    vem_config_t *again = vem_config_parse(printed, "printed.cfg", err, sizeof err);
    if (!again) {
        fprintf(stderr, "printed configuration refused: %s\n%s", err, printed);
        abort();
    }
    char *reprinted = s_print(again);
    if (strcmp(printed, reprinted) != 0)
        abort();
    free(printed);
    free(reprinted);
    vem_config_destroy(&again);
    vem_config_destroy(&cfg);
    return 0;
}
