/* vemctl keys — CURVE key pairs for the gateway and station endpoints (curve.h).
 *
 * `vemctl keys gen NAME [--dir DIR]` writes DIR/NAME.key (the pair, mode 0600: a server's
 * stations.curve_server_key / gateways.curve_server_key, or a client's --client-key) and
 * DIR/NAME.pub (the public key: into the server's clients directory, or a client's
 * --server-key). Existing files are never overwritten. */
#include "vemctl.h"

#include "curve.h"

#include <stdio.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fprintf(out, "usage: vemctl keys gen NAME [--dir DIR]\n"
                 "  writes DIR/NAME.key (CURVE key pair, Z85, mode 0600) and DIR/NAME.pub\n"
                 "  (its public key); DIR defaults to the current directory\n");
}

int vemctl_keys_main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        s_usage(stdout);
        return 0;
    }
    if (argc < 3 || strcmp(argv[1], "gen") != 0) {
        s_usage(stderr);
        return 2;
    }
    const char *name = argv[2], *dir = ".";
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            s_usage(stderr);
            return 2;
        }
    }
    char err[600];
    if (vem_curve_generate(dir, name, err, sizeof err) != 0) {
        fprintf(stderr, "vemctl keys gen: %s\n", err);
        return 1;
    }
    printf("%s/%s.key\n%s/%s.pub\n", dir, name, dir, name);
    return 0;
}
