/* rules_out — verdicts of the rules engine: names, clauses, ids, times, JSON and text.
 *
 * Pure; runs on the thread that feeds the vehicle. The id is the documented hash of
 * vem_rules_id: FNV-1a is short enough to write out, has no dependency, and two 64-bit runs
 * with different offset bases give 128 bits, so that the ids of a province's violations over
 * years do not collide by chance; it is not meant to resist anyone choosing inputs. */
#include "rules_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *clause;
} s_rule_info_t;

static const s_rule_info_t s_rules[VEM_RULE_COUNT] = {
    [VEM_RULE_RSD_NO] = {"rsd.no_exceed",
                         "GB 3847-2018 remote-sensing limit for NO (diesel; limit a/b, to "
                         "confirm) or GB 18285-2018 (gasoline); validity HJ 845-2017 App. A; "
                         "2 consecutive valid exceedances in 6 months"},
    [VEM_RULE_RSD_OPACITY] = {"rsd.opacity_exceed",
                              "GB 3847-2018 remote-sensing limit for smoke opacity (to confirm); "
                              "validity HJ 845-2017 App. A; 2 consecutive valid exceedances in "
                              "6 months"},
    [VEM_RULE_RSD_RINGELMANN] = {"rsd.ringelmann_exceed",
                                 "GB 3847-2018 remote-sensing limit for the Ringelmann grade (to "
                                 "confirm); validity HJ 845-2017 App. A; 2 consecutive valid "
                                 "exceedances in 6 months"},
    [VEM_RULE_RSD_CO] = {"rsd.co_exceed",
                         "GB 18285-2018 remote-sensing limit for CO (gasoline); validity HJ "
                         "845-2017 App. A; 2 consecutive valid exceedances in 6 months"},
    [VEM_RULE_RSD_HC] = {"rsd.hc_exceed",
                         "GB 18285-2018 remote-sensing limit for HC (gasoline); validity HJ "
                         "845-2017 App. A; 2 consecutive valid exceedances in 6 months"},
    [VEM_RULE_OBD_MIL_ON] = {"obd.mil_on",
                             "GB 17691-2018 Annex Q / HJ 1239.3-2021 OBD information: "
                             "malfunction indicator (MIL) on"},
    [VEM_RULE_OBD_DTC] = {"obd.dtc", "GB 17691-2018 Annex Q / HJ 1239.3-2021 OBD information: "
                                     "emission-related diagnostic trouble codes"},
    [VEM_RULE_OBD_REAGENT_EMPTY] = {"obd.reagent_empty",
                                    "GB 17691-2018 Annex Q / HJ 1239.3-2021 data stream: reagent "
                                    "(urea) remaining while the engine runs"},
    [VEM_RULE_OBD_NOX_WINDOW] = {"obd.nox_window",
                                 "GB 17691-2018 in-service conformity, work-based window "
                                 "(PEMS method, to confirm): NOx percentile of valid windows "
                                 "above WHTC limit 460 mg/kWh x CF 1.5"},
    [VEM_RULE_OBD_NOX_HIGH] = {"obd.nox_high",
                               "GB 17691-2018 Annex Q / HJ 1239.3-2021 data stream: SCR "
                               "downstream NOx in warm operation (fallback without engine "
                               "figures)"},
    [VEM_RULE_OBD_SCR_INEFFECTIVE] = {"obd.scr_ineffective",
                                      "GB 17691-2018 Annex Q / HJ 1239.3-2021 data stream: SCR "
                                      "conversion from upstream and downstream NOx"},
    [VEM_RULE_OBD_TAMPER] = {"obd.tamper",
                             "HJ 1239.1/.3-2021 terminal removal alarm and data integrity; GB "
                             "17691-2018 Annex Q OBD information"},
    [VEM_RULE_OBD_OFFLINE] = {"obd.offline", "HJ 1239.2-2021 platform: vehicle online status "
                                             "and daily data completeness"},
    [VEM_RULE_FUSION_OBD_MISMATCH] = {"fusion.obd_mismatch",
                                      "HJ 845-2017 roadside NO exceedance against GB 17691-2018 "
                                      "Annex Q downstream NOx of the same vehicle"},
};

const char *vem_rules_name(vem_rule_t rule)
{
    return (unsigned)rule < VEM_RULE_COUNT ? s_rules[rule].name : NULL;
}

const char *vem_rules_clause(vem_rule_t rule)
{
    return (unsigned)rule < VEM_RULE_COUNT ? s_rules[rule].clause : NULL;
}

bool vem_rules_lookup(const char *name, vem_rule_t *rule)
{
    for (unsigned r = 0; r < VEM_RULE_COUNT; r++) {
        if (strcmp(s_rules[r].name, name) == 0) {
            *rule = (vem_rule_t)r;
            return true;
        }
    }
    return false;
}

const char *vem_rules_severity_name(vem_severity_t severity)
{
    return severity == VEM_SEVERITY_VIOLATION ? "violation" : "notice";
}

/* ---- ids ---------------------------------------------------------------------------------- */

#define S_FNV64_BASIS      0xcbf29ce484222325ULL
#define S_FNV128_BASIS_LOW 0x6c62272e07bb0142ULL
#define S_FNV64_PRIME      0x00000100000001b3ULL

static void s_fnv(uint64_t h[2], const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h[0] = (h[0] ^ (uint8_t)s[i]) * S_FNV64_PRIME;
        h[1] = (h[1] ^ (uint8_t)s[i]) * S_FNV64_PRIME;
    }
}

void vem_rules_id(vem_rule_t rule, const char *vehicle_key, const char *anchor,
                  char out[VEM_RULES_ID_LEN])
{
    uint64_t h[2] = {S_FNV64_BASIS, S_FNV128_BASIS_LOW};
    const char *name = vem_rules_name(rule);
    s_fnv(h, name, strlen(name) + 1);
    s_fnv(h, vehicle_key, strlen(vehicle_key) + 1);
    s_fnv(h, anchor, strlen(anchor));
    snprintf(out, VEM_RULES_ID_LEN, "%016" PRIx64 "%016" PRIx64, h[0], h[1]);
}

void vem_rules_emit(vem_rules_out_t *out, const vem_rules_who_t *who, vem_rules_verdict_t *v)
{
    if (out->fn) {
        bool roadside = v->rule <= VEM_RULE_RSD_HC;
        vem_violation_t x = {.rule = v->rule,
                             .name = vem_rules_name(v->rule),
                             .clause = vem_rules_clause(v->rule),
                             .vin = who->vin,
                             .plate = who->plate,
                             .plate_color = who->plate_color,
                             .first_us = v->first_us,
                             .last_us = v->last_us,
                             .measured = v->measured,
                             .limit = v->limit,
                             .unit = v->unit ? v->unit : "",
                             .severity = v->severity,
                             .evidence = v->evidence,
                             .spool_seq = out->spool_seq};
        vem_rules_id(v->rule, roadside ? who->plate : who->vin, v->anchor, x.id);
        out->fn(out->arg, &x);
        out->emitted++;
    }
    json_decref(v->evidence);
    v->evidence = NULL;
}

/* ---- time --------------------------------------------------------------------------------- */

#define S_BEIJING_US (8LL * 3600 * 1000000)

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t s_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void vem_rules_civil(int64_t us, vem_rules_civil_t *c)
{
    int64_t local = us + S_BEIJING_US;
    int64_t days = s_floor_div(local, 86400LL * 1000000);
    int64_t rest = local - days * 86400LL * 1000000;
    s_civil_from_days(days, &c->year, &c->month, &c->day);
    int64_t s = rest / 1000000;
    c->micro = (int)(rest % 1000000);
    c->hour = (int)(s / 3600);
    c->minute = (int)(s / 60 % 60);
    c->second = (int)(s % 60);
}

int64_t vem_rules_from_civil(const vem_rules_civil_t *c)
{
    int64_t days = s_days_from_civil(c->year, c->month, c->day);
    int64_t s = days * 86400 + c->hour * 3600 + c->minute * 60 + c->second;
    return s * 1000000 + c->micro - S_BEIJING_US;
}

static int s_month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

bool vem_rules_date_us(const char *text, int64_t *us)
{
    static const char shape[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof shape; i++) {
        char c = text[i];
        bool ok = shape[i] == 'd' ? c >= '0' && c <= '9' : c == shape[i];
        if (!ok)
            return false; /* (the terminating NUL is checked too) */
    }
    vem_rules_civil_t c = {0};
    c.year = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + text[3] - '0';
    c.month = (text[5] - '0') * 10 + text[6] - '0';
    c.day = (text[8] - '0') * 10 + text[9] - '0';
    if (c.year < 1970 || c.month < 1 || c.month > 12 || c.day < 1 ||
        c.day > s_month_days(c.year, c.month))
        return false;
    *us = vem_rules_from_civil(&c);
    return true;
}

/* c moved `months` natural months on, a day the later month lacks becoming its last. */
static void s_add_months(vem_rules_civil_t *c, unsigned months)
{
    int64_t m = c->month - 1 + (int64_t)months;
    c->year += m / 12;
    c->month = (int)(m % 12) + 1;
    int last = s_month_days(c->year, c->month);
    if (c->day > last)
        c->day = last;
}

int64_t vem_rules_add_months(int64_t us, unsigned months)
{
    vem_rules_civil_t c;
    vem_rules_civil(us, &c);
    s_add_months(&c, months);
    return vem_rules_from_civil(&c);
}

bool vem_rules_within_months(int64_t earlier_us, int64_t later_us, unsigned months)
{
    vem_rules_civil_t c;
    vem_rules_civil(earlier_us, &c);
    s_add_months(&c, months);
    int64_t later_day = s_floor_div(later_us + S_BEIJING_US, 86400LL * 1000000);
    return later_day <= s_days_from_civil(c.year, c.month, c.day);
}

void vem_rules_iso(int64_t us, char out[VEM_RULES_ISO_LEN])
{
    vem_rules_civil_t c;
    vem_rules_civil(us, &c);
    if (c.micro == 0)
        snprintf(out, VEM_RULES_ISO_LEN, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d+08:00", c.year,
                 c.month, c.day, c.hour, c.minute, c.second);
    else if (c.micro % 1000 == 0)
        snprintf(out, VEM_RULES_ISO_LEN, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03d+08:00",
                 c.year, c.month, c.day, c.hour, c.minute, c.second, c.micro / 1000);
    else
        snprintf(out, VEM_RULES_ISO_LEN, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%06d+08:00",
                 c.year, c.month, c.day, c.hour, c.minute, c.second, c.micro);
}

json_t *vem_rules_iso_json(int64_t us)
{
    char iso[VEM_RULES_ISO_LEN];
    vem_rules_iso(us, iso);
    return json_string(iso);
}

json_t *vem_rules_at_json(const vem_rules_at_t *at)
{
    json_t *o = json_object();
    json_object_set_new(o, "time", vem_rules_iso_json(at->sec * 1000000));
    if (at->key_idx == VEM_RULES_KEY_UNKNOWN)
        return o;
    json_object_set_new(o, "sample_time", vem_rules_iso_json((at->sec + at->key_off) * 1000000));
    json_object_set_new(o, "block_idx", json_integer(at->key_idx));
    return o;
}

json_t *vem_rules_real_json(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* ---- JSON and text ------------------------------------------------------------------------ */

static json_t *s_str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *vem_rules_violation_json(const vem_violation_t *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "violation_id", json_string(v->id));
    json_object_set_new(o, "rule", json_string(v->name));
    json_object_set_new(o, "clause", json_string(v->clause));
    json_object_set_new(o, "vin", s_str_or_null(v->vin));
    json_object_set_new(o, "plate", s_str_or_null(v->plate));
    json_object_set_new(o, "plate_color", s_str_or_null(v->plate_color));
    json_object_set_new(o, "first_at", vem_rules_iso_json(v->first_us));
    json_object_set_new(o, "last_at", vem_rules_iso_json(v->last_us));
    json_object_set_new(o, "measured", vem_rules_real_json(v->measured));
    json_object_set_new(o, "limit", vem_rules_real_json(v->limit));
    json_object_set_new(o, "unit", s_str_or_null(v->unit));
    json_object_set_new(o, "severity", json_string(vem_rules_severity_name(v->severity)));
    json_object_set_new(o, "evidence", json_incref(v->evidence));
    return o;
}

char *vem_rules_explain(const vem_violation_t *v)
{
    char first[VEM_RULES_ISO_LEN], last[VEM_RULES_ISO_LEN];
    vem_rules_iso(v->first_us, first);
    vem_rules_iso(v->last_us, last);
    char *evidence = json_dumps(v->evidence, JSON_INDENT(2) | JSON_SORT_KEYS);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        abort();
    const char *color = v->plate_color && *v->plate && *v->plate_color ? v->plate_color : "";
    fprintf(f, "%s %s of %s%s%s%s%s%s%s%s\n", v->name, vem_rules_severity_name(v->severity),
            *v->vin ? "VIN " : "", v->vin, *v->vin && *v->plate ? ", " : "",
            *v->plate ? "plate " : "", v->plate, *color ? " (" : "", color, *color ? ")" : "");
    fprintf(f, "  id       %s\n  clause   %s\n  evidence from %s to %s\n", v->id, v->clause, first,
            last);
    if (isfinite(v->measured))
        fprintf(f, "  measured %.6g %s, limit %.6g %s\n", v->measured, v->unit, v->limit, v->unit);
    fprintf(f, "  evidence %s\n", evidence ? evidence : "{}");
    fclose(f);
    free(evidence);
    return text;
}
