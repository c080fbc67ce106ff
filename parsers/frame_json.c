/* frame_json — decoded frame to JSON; see frame_json.h.
 *
 * Walks the per-type field lists of hj1239 so names, scales and markers come from one table.
 * Values without a measurement become null and their names go to the block's `invalid` or
 * `abnormal` list, sorted. Strings from the wire are made printable ASCII (other bytes become
 * '?', trailing NULs and spaces are cut) because JSON strings must be valid UTF-8. Allocation
 * failures inside jansson abort the program, as the house rules say for out-of-memory. */
#include "frame_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *s_take(json_t *j)
{
    if (!j)
        abort(); /* out of memory */
    return j;
}

static void s_set(json_t *obj, const char *key, json_t *value)
{
    if (json_object_set_new(obj, key, s_take(value)) != 0)
        abort();
}

void vem_frame_json_hex_text(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

json_t *vem_frame_json_hex(const uint8_t *p, size_t n)
{
    char small[160];
    char *s = n * 2 + 1 <= sizeof small ? small : malloc(n * 2 + 1);
    if (!s)
        abort();
    vem_frame_json_hex_text(s, p, n);
    json_t *j = s_take(json_string(s));
    if (s != small)
        free(s);
    return j;
}

static json_t *s_text(const uint8_t *p, size_t n)
{
    char s[72];
    if (n >= sizeof s)
        n = sizeof s - 1;
    while (n > 0 && (p[n - 1] == 0 || p[n - 1] == ' '))
        n--;
    for (size_t i = 0; i < n; i++)
        s[i] = p[i] >= 0x20 && p[i] < 0x7F ? (char)p[i] : '?';
    return s_take(json_stringn(s, n));
}

static json_t *s_time(int64_t epoch)
{
    char buf[VEM_HJ1239_TIME_LEN];
    vem_hj1239_time_format(epoch, buf);
    return json_string(buf);
}

/* Rounds to the field's resolution so the value prints like the vectors. */
static json_t *s_number(const vem_hj1239_field_info_t *fi, double v)
{
    if (fi->integer)
        return json_integer((json_int_t)llround(v));
    double p10 = 1;
    for (unsigned i = 0; i < fi->decimals; i++)
        p10 *= 10;
    return json_real(round(v * p10) / p10);
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *s_name_list(const char **names, size_t n)
{
    qsort(names, n, sizeof names[0], s_cmp_names);
    json_t *arr = s_take(json_array());
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, s_take(json_string(names[i])));
    return arr;
}

static json_t *s_obd_protocol(uint32_t raw)
{
    static const char *const names[] = {"iso15765", "iso27145", "sae_j1939"};
    return raw < 3 ? json_string(names[raw]) : json_null();
}

json_t *vem_frame_json_block(const vem_hj1239_frame_t *f, size_t i)
{
    const vem_hj1239_block_t *b = &f->blocks[i];
    json_t *o = s_take(json_object());
    const char *name = vem_hj1239_block_name(b->type);
    s_set(o, "type", json_string(name ? name : "vendor"));
    s_set(o, "type_code", json_integer(b->type));
    if (f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK)
        s_set(o, "seq", json_integer(b->seq));
    if (f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME)
        s_set(o, "time", s_time(b->time));
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(b->type, &n);
    const char *invalid[VEM_HJ1239_F_COUNT], *abnormal[VEM_HJ1239_F_COUNT];
    size_t ninvalid = 0, nabnormal = 0;
    for (size_t k = 0; k < n; k++) {
        vem_hj1239_field_t fid = list[k];
        const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(fid);
        uint32_t raw = b->raw[fid];
        if (b->novalue >> fid & 1) {
            if (vem_hj1239_marker_invalid(fid, raw))
                invalid[ninvalid++] = fi->name;
            else
                abnormal[nabnormal++] = fi->name;
        }
        if (b->type == VEM_HJ1239_BLOCK_OBD && fid == VEM_HJ1239_F_DTC_COUNT) {
            /* strings come before the count on the wire, and in the JSON */
            const vem_hj1239_obd_t *ob = &f->obd[b->obd];
            s_set(o, "obd_vin", s_text(ob->vin, 17));
            s_set(o, "scin", s_text(ob->scin, 18));
            s_set(o, "cvn", s_text(ob->cvn, 18));
            s_set(o, "iupr", vem_frame_json_hex(ob->iupr, 36));
        }
        json_t *v;
        double d;
        switch (fid) {
        case VEM_HJ1239_F_POS_STATUS:
            s_set(o, "pos_valid", json_boolean(vem_hj1239_pos_valid((uint8_t)raw)));
            continue;
        case VEM_HJ1239_F_OBD_PROTOCOL:
            v = s_obd_protocol(raw);
            break;
        case VEM_HJ1239_F_MIL:
            v = raw <= 1 ? json_boolean(raw) : json_null();
            break;
        default:
            v = vem_hj1239_value(b, fid, &d) ? s_number(fi, d) : json_null();
            break;
        }
        s_set(o, fi->name, v);
    }
    if (b->type == VEM_HJ1239_BLOCK_OBD) {
        const vem_hj1239_obd_t *ob = &f->obd[b->obd];
        json_t *arr = s_take(json_array());
        for (size_t k = 0; k < ob->dtc_n; k++) {
            uint32_t dtc = f->dtcs[ob->dtc_first + k];
            uint8_t be[4] = {(uint8_t)(dtc >> 24), (uint8_t)(dtc >> 16), (uint8_t)(dtc >> 8),
                             (uint8_t)dtc};
            json_array_append_new(arr, vem_frame_json_hex(be, 4));
        }
        s_set(o, "dtcs", arr);
    }
    s_set(o, "invalid", s_name_list(invalid, ninvalid));
    s_set(o, "abnormal", s_name_list(abnormal, nabnormal));
    return o;
}

static void s_envelope(json_t *o, const vem_hj1239_frame_t *f)
{
    const char *cmd = vem_hj1239_cmd_name(f->cmd);
    s_set(o, "cmd", cmd ? json_string(cmd) : json_null());
    s_set(o, "cmd_code", json_integer(f->cmd));
    s_set(o, "vin", s_text(f->vin, 17));
    if (f->header == VEM_HJ1239_HEADER_PLATFORM) {
        s_set(o, "header", json_string("platform"));
        s_set(o, "response", json_integer(f->response));
    } else {
        s_set(o, "header", json_string("terminal"));
        s_set(o, "sw_version", json_integer(f->sw_version));
    }
    const char *enc = vem_hj1239_encryption_name(f->encryption);
    s_set(o, "encryption", enc ? json_string(enc) : json_integer(f->encryption));
    s_set(o, "length", json_integer(f->length));
}

static json_t *s_position(uint8_t status, uint32_t raw, bool is_lat)
{
    double deg;
    if (!vem_hj1239_position(status, raw, is_lat, &deg))
        return json_null();
    return json_real(round(deg * 1e6) / 1e6);
}

static json_t *s_sig(const vem_hj1239_sig_t *sig)
{
    json_t *o = s_take(json_object());
    s_set(o, "r", vem_frame_json_hex(sig->r, sig->rlen));
    s_set(o, "s", vem_frame_json_hex(sig->s, sig->slen));
    return o;
}

static json_t *s_code_name(uint8_t code, const char *const *names, size_t n)
{
    return code < n && names[code] ? json_string(names[code]) : json_integer(code);
}

json_t *vem_frame_json_new(const vem_hj1239_frame_t *f)
{
    json_t *o = s_take(json_object());
    s_envelope(o, f);
    bool rt = f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND;
    if (rt)
        s_set(o, "dialect", json_string(vem_hj1239_dialect_name(f->layout)));
    if (f->has_time)
        s_set(o, "time", s_time(f->time));
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        s_set(o, "seq", json_integer(f->seq));
        s_set(o, "iccid", s_text(f->iccid, 20));
        break;
    case VEM_HJ1239_CMD_LOGOUT:
        s_set(o, "seq", json_integer(f->seq));
        break;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        s_set(o, "seq", json_integer(f->seq));
        s_set(o, "pos_valid", json_boolean(vem_hj1239_pos_valid(f->pos_status)));
        s_set(o, "lon", s_position(f->pos_status, f->lon_raw, false));
        s_set(o, "lat", s_position(f->pos_status, f->lat_raw, true));
        break;
    case VEM_HJ1239_CMD_ACTIVATION:
        s_set(o, "chip_id", s_text(f->chip_id, 16));
        s_set(o, "pubkey", vem_frame_json_hex(f->pubkey, 64));
        s_set(o, "act_vin", s_text(f->act_vin, 17));
        s_set(o, "signature", s_sig(&f->sig));
        break;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY: {
        static const char *const status[] = {NULL, "ok", "failed"};
        static const char *const info[] = {"ok", "chip_activated", "vin_error"};
        s_set(o, "status", s_code_name(f->act_status, status, 3));
        s_set(o, "info", s_code_name(f->act_info, info, 3));
        break;
    }
    default:
        break;
    }
    if (rt) {
        s_set(o, "seq", json_integer(f->seq));
        json_t *arr = s_take(json_array());
        for (size_t i = 0; i < f->nblocks; i++)
            json_array_append_new(arr, vem_frame_json_block(f, i));
        s_set(o, "blocks", arr);
        if (f->has_sig)
            s_set(o, "signature", s_sig(&f->sig));
        s_set(o, "vendor_blocks", json_integer(f->vendor_blocks));
    }
    return o;
}

json_t *vem_frame_json_error(const vem_hj1239_error_t *err, const vem_hj1239_frame_t *f)
{
    json_t *o = s_take(json_object());
    s_set(o, "error", json_string(vem_hj1239_status_name(err->status)));
    s_set(o, "detail", json_string(err->detail));
    s_set(o, "offset", json_integer((json_int_t)err->offset));
    if (f && err->status == VEM_HJ1239_UNSUPPORTED_ENCRYPTION)
        s_envelope(o, f);
    return o;
}
