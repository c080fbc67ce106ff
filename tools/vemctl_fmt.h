/* vemctl_fmt — how vemctl shows values to people: numbers at their field's resolution, text
 * padded by display width. Shared by the subcommands; no state but the locale it sets.
 *
 * A number whose key is a field of the decoder's table (FIELDS.md's name) is rounded to the
 * decimals of one resolution step and printed without trailing zeros: lat 32.45 (not
 * 32.450000000000003), speed 62.50390625 (1/256 km/h). Other keys (roadside readings,
 * registry values, a verdict's measured value) have no fixed resolution: they print at 15
 * significant digits, which is the stored double without its binary noise. */
#ifndef VEMCTL_FMT_H
#define VEMCTL_FMT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Makes the character type UTF-8 (C.UTF-8) so that display widths can be measured; numbers
 * keep the C locale. Call once before printing tables. */
void vemctl_fmt_init(void);

/* Decimals of one resolution step of the field named key (0 for integer fields); -1 when key
 * is no field of the decoder's table. */
int vemctl_fmt_decimals(const char *key);

/* v as text at key's resolution into out (cap bytes; cut if shorter). */
void vemctl_fmt_number(const char *key, double v, char *out, size_t cap);

/* A verdict's measured value or limit for a table column: whole numbers from 1000 up, else 4
 * significant digits (an SCR ratio of 0.0200883074164014 reads 0.02009); JSON keeps them whole. */
void vemctl_fmt_brief(double v, char *out, size_t cap);

/* Rounds every number in doc (objects, arrays, nested) to the resolution of the key it stands
 * under (array elements: the array's key); integer fields become JSON integers. Print the
 * result with VEMCTL_FMT_JSON_FLAGS so that the rounded values print as they read. */
void vemctl_fmt_json(json_t *doc);

/* json_dumpf flags for a document vemctl_fmt_json has rounded. */
#define VEMCTL_FMT_JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))

/* Columns s takes on a terminal (wide characters such as Chinese count two); bytes when s is
 * not valid UTF-8. */
int vemctl_fmt_width(const char *s);

/* Writes s to out, then spaces up to width display columns (none when s is wider). */
void vemctl_fmt_pad(FILE *out, const char *s, int width);

#endif
