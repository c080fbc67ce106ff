/* hj1239_time — wire times (6 bytes YY MM DD hh mm ss, Beijing time) to and from epoch
 * seconds, ISO 8601 text, and the Beijing day number that the daemon's daily partitions and
 * day boundaries use. See hj1239.h. */
#include "hj1239_int.h"

/* ---- time ---------------------------------------------------------------------------------- */

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Date from days since 1970-01-01 (proleptic Gregorian), written independently of
 * vem_hj1239_wire_days so that each checks the other in the tests. Counting years from March puts
 * the leap day last, so a 400-year era has a fixed day count and the month follows from the day of
 * the year by a linear formula (153 days per five months from March). */
static void s_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = s_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t vem_hj1239_beijing_day(int64_t epoch)
{
    return s_floor_div(epoch + VEM_HJ1239_BEIJING_S, 86400);
}

bool vem_hj1239_time_decode(const uint8_t wire[6], int64_t *epoch)
{
    if (!vem_hj1239_date_ok(wire) || !vem_hj1239_clock_ok(wire))
        return false;
    int64_t days = vem_hj1239_wire_days(wire[0], wire[1], wire[2]);
    *epoch = days * 86400 + wire[3] * 3600 + wire[4] * 60 + wire[5] - VEM_HJ1239_BEIJING_S;
    return true;
}

bool vem_hj1239_time_encode(int64_t epoch, uint8_t wire[6])
{
    int64_t days = vem_hj1239_beijing_day(epoch);
    int64_t secs = epoch + VEM_HJ1239_BEIJING_S - days * 86400;
    int64_t y;
    unsigned m, d;
    s_civil_from_days(days, &y, &m, &d);
    if (y < 2000 || y > 2255)
        return false;
    wire[0] = (uint8_t)(y - 2000);
    wire[1] = (uint8_t)m;
    wire[2] = (uint8_t)d;
    wire[3] = (uint8_t)(secs / 3600);
    wire[4] = (uint8_t)(secs / 60 % 60);
    wire[5] = (uint8_t)(secs % 60);
    return true;
}

/* Writes v as exactly `width` decimal digits. */
static void s_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void vem_hj1239_time_format(int64_t epoch, char out[VEM_HJ1239_TIME_LEN])
{
    int64_t days = vem_hj1239_beijing_day(epoch);
    unsigned secs = (unsigned)(epoch + VEM_HJ1239_BEIJING_S - days * 86400);
    int64_t y;
    unsigned m, d;
    s_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999; /* not reachable from wire times (2000..2255) */
    memcpy(out, "0000-00-00T00:00:00+08:00", VEM_HJ1239_TIME_LEN);
    s_digits(out, (unsigned)y, 4);
    s_digits(out + 5, m, 2);
    s_digits(out + 8, d, 2);
    s_digits(out + 11, secs / 3600, 2);
    s_digits(out + 14, secs / 60 % 60, 2);
    s_digits(out + 17, secs % 60, 2);
}
