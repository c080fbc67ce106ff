/* vemctl_fmt — numbers at their field's resolution, text padded by display width; see
 * vemctl_fmt.h. The resolutions are the decoder's field table (hj1239.h), the one place that
 * knows them. */
#include "vemctl_fmt.h"

#include "hj1239.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

void vemctl_fmt_init(void)
{
    if (!setlocale(LC_CTYPE, "C.UTF-8"))
        setlocale(LC_CTYPE, "C.utf8");
}

int vemctl_fmt_decimals(const char *key)
{
    for (int f = 0; f < VEM_HJ1239_F_COUNT; f++) {
        const vem_hj1239_field_info_t *info = vem_hj1239_field_info((vem_hj1239_field_t)f);
        if (strcmp(info->name, key) == 0)
            return info->integer ? 0 : info->decimals;
    }
    return -1;
}

void vemctl_fmt_brief(double v, char *out, size_t cap)
{
    if (isfinite(v) && fabs(v) >= 1000)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.4g", v);
}

void vemctl_fmt_number(const char *key, double v, char *out, size_t cap)
{
    int d = key ? vemctl_fmt_decimals(key) : -1;
    if (d < 0 || !isfinite(v)) {
        snprintf(out, cap, "%.15g", v);
        return;
    }
    int n = snprintf(out, cap, "%.*f", d, v);
    if (n < 0 || (size_t)n >= cap)
        return;
    if (d > 0) { /* trailing zeros say nothing: 62.50000000 is 62.5 */
        while (n > 0 && out[n - 1] == '0')
            out[--n] = '\0';
        if (n > 0 && out[n - 1] == '.')
            out[--n] = '\0';
    }
    if (strcmp(out, "-0") == 0)
        strcpy(out, "0");
}

/* The value at key, rounded; a new reference (or v itself with one more reference). */
static json_t *s_rounded(const char *key, json_t *v)
{
    if (!json_is_real(v)) {
        vemctl_fmt_json(v);
        return json_incref(v);
    }
    char text[64];
    vemctl_fmt_number(key, json_real_value(v), text, sizeof text);
    if (key && vemctl_fmt_decimals(key) == 0 && fabs(json_real_value(v)) < 9e15)
        return json_integer(strtoll(text, NULL, 10));
    return json_real(strtod(text, NULL));
}

static void s_round_array(const char *key, json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        json_array_set_new(arr, i, s_rounded(key, v));
    }
}

void vemctl_fmt_json(json_t *doc)
{
    const char *key;
    json_t *v;
    if (json_is_array(doc)) {
        s_round_array(NULL, doc);
        return;
    }
    json_object_foreach(doc, key, v)
    {
        if (json_is_array(v))
            s_round_array(key, v);
        else
            json_object_set_new(doc, key, s_rounded(key, v));
    }
}

int vemctl_fmt_width(const char *s)
{
    size_t n = mbstowcs(NULL, s, 0);
    if (n == (size_t)-1)
        return (int)strlen(s);
    wchar_t *w = malloc((n + 1) * sizeof *w);
    if (!w)
        abort();
    mbstowcs(w, s, n + 1);
    int width = wcswidth(w, n);
    free(w);
    return width < 0 ? (int)n : width;
}

void vemctl_fmt_pad(FILE *out, const char *s, int width)
{
    fputs(s, out);
    for (int i = vemctl_fmt_width(s); i < width; i++)
        fputc(' ', out);
}
