/* hj1239_encode — writes a decoded frame back to bytes (header form, layout, blocks, vendor
 * items and signature as in the struct), and compares two decoded frames. See hj1239.h. */
#include "hj1239_int.h"

static inline void s_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void s_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static size_t s_block_wire_len(const vem_hj1239_block_t *b, size_t prefix)
{
    size_t body = vem_hj1239_body_lens[b->type];
    if (b->type == VEM_HJ1239_BLOCK_OBD) {
        uint32_t cnt = b->raw[VEM_HJ1239_F_DTC_COUNT];
        if (cnt <= VEM_HJ1239_OBD_MAX_DTCS)
            body += 4 * cnt;
    }
    return 1 + prefix + body;
}

static size_t s_data_len(const vem_hj1239_frame_t *f)
{
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        return 28;
    case VEM_HJ1239_CMD_LOGOUT:
        return 8;
    case VEM_HJ1239_CMD_TIME_SYNC:
        return f->has_time ? 6 : 0;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        return 17;
    case VEM_HJ1239_CMD_ACTIVATION:
        return 103 + 2 + (size_t)f->sig.rlen + f->sig.slen;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        return 2;
    default:
        break;
    }
    bool tf = f->layout & VEM_HJ1239_LAYOUT_TYPE_FIRST;
    bool spb = f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    size_t prefix = vem_hj1239_prefix(f->layout);
    size_t n = (tf || spb) ? 6 : 8;
    for (size_t i = 0; i < f->nblocks && i < VEM_HJ1239_MAX_BLOCKS; i++)
        n += s_block_wire_len(&f->blocks[i], prefix + (tf && i == 0 ? 2 : 0));
    for (size_t i = 0; i < f->vendor_blocks && i < VEM_HJ1239_MAX_VENDOR; i++)
        n += f->vendor[i].len;
    if (f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME)
        n += 2 + (size_t)f->sig.rlen + f->sig.slen;
    return n;
}

size_t vem_hj1239_encoded_len(const vem_hj1239_frame_t *f)
{
    return VEM_HJ1239_MIN_FRAME + s_data_len(f);
}

static uint8_t *s_put_sig(uint8_t *p, const vem_hj1239_sig_t *sig)
{
    *p++ = sig->rlen;
    memcpy(p, sig->r, sig->rlen);
    p += sig->rlen;
    *p++ = sig->slen;
    memcpy(p, sig->s, sig->slen);
    return p + sig->slen;
}

static uint8_t *s_put_fields(uint8_t *p, const vem_hj1239_block_t *b)
{
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(b->type, &n);
    for (size_t i = 0; i < n; i++) {
        uint8_t fid = list[i];
        switch (vem_hj1239_fields[fid].width) {
        case 1:
            *p = (uint8_t)b->raw[fid];
            break;
        case 2:
            s_put16(p, b->raw[fid]);
            break;
        default:
            s_put32(p, b->raw[fid]);
            break;
        }
        p += vem_hj1239_fields[fid].width;
    }
    return p;
}

/* Writes one block; NULL when it cannot be written. */
static uint8_t *s_put_block(uint8_t *p, const vem_hj1239_frame_t *f, const vem_hj1239_block_t *b,
                            bool serial, bool bt)
{
    if (vem_hj1239_body_lens[b->type] == 0)
        return NULL;
    *p++ = b->type;
    if (serial) {
        s_put16(p, b->seq);
        p += 2;
    }
    if (bt) {
        if (!vem_hj1239_time_encode(b->time, p))
            return NULL;
        p += 6;
    }
    if (b->type != VEM_HJ1239_BLOCK_OBD)
        return s_put_fields(p, b);
    if (b->obd >= VEM_HJ1239_MAX_OBD)
        return NULL;
    const vem_hj1239_obd_t *o = &f->obd[b->obd];
    uint32_t cnt = b->raw[VEM_HJ1239_F_DTC_COUNT];
    size_t ndtc = cnt <= VEM_HJ1239_OBD_MAX_DTCS ? cnt : 0;
    if ((size_t)o->dtc_first + ndtc > VEM_HJ1239_MAX_DTCS)
        return NULL;
    p[0] = (uint8_t)b->raw[VEM_HJ1239_F_OBD_PROTOCOL];
    p[1] = (uint8_t)b->raw[VEM_HJ1239_F_MIL];
    s_put16(p + 2, b->raw[VEM_HJ1239_F_DIAG_SUPPORTED]);
    s_put16(p + 4, b->raw[VEM_HJ1239_F_DIAG_READY]);
    memcpy(p + 6, o->vin, 17);
    memcpy(p + 23, o->scin, 18);
    memcpy(p + 41, o->cvn, 18);
    memcpy(p + 59, o->iupr, 36);
    p[95] = (uint8_t)cnt;
    for (size_t i = 0; i < ndtc; i++)
        s_put32(p + 96 + 4 * i, f->dtcs[o->dtc_first + i]);
    return p + 96 + 4 * ndtc;
}

static uint8_t *s_put_vendor(uint8_t *p, const vem_hj1239_frame_t *f, size_t after)
{
    for (size_t i = 0; i < f->vendor_blocks; i++) {
        if (f->vendor[i].after != after)
            continue;
        memcpy(p, f->vendor[i].data, f->vendor[i].len);
        p += f->vendor[i].len;
    }
    return p;
}

/* Writes the real-time data unit; NULL when f cannot be written. */
static uint8_t *s_put_realtime(uint8_t *p, const vem_hj1239_frame_t *f)
{
    bool tf = f->layout & VEM_HJ1239_LAYOUT_TYPE_FIRST;
    bool spb = f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    bool bt = f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    if (f->nblocks > VEM_HJ1239_MAX_BLOCKS || f->vendor_blocks > VEM_HJ1239_MAX_VENDOR ||
        (tf && spb) || ((tf || spb) && f->nblocks == 0))
        return NULL;
    for (size_t i = 0; i < f->vendor_blocks; i++)
        if (f->vendor[i].after > f->nblocks || (tf && f->vendor[i].after == 0) ||
            (f->vendor[i].len && !f->vendor[i].data))
            return NULL;
    if (!tf && !spb) {
        s_put16(p, f->seq);
        p += 2;
    }
    for (size_t i = 0; i < f->nblocks; i++) {
        p = s_put_vendor(p, f, i);
        const vem_hj1239_block_t *b = &f->blocks[i];
        if (tf && i == 0) {
            /* the first block's type, then the frame serial */
            vem_hj1239_block_t first = *b;
            first.seq = f->seq;
            p = s_put_block(p, f, &first, true, bt);
        } else {
            p = s_put_block(p, f, b, spb, bt);
        }
        if (!p)
            return NULL;
    }
    p = s_put_vendor(p, f, f->nblocks);
    if (bt)
        p = s_put_sig(p, &f->sig);
    return p;
}

int vem_hj1239_encode(const vem_hj1239_frame_t *f, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!vem_hj1239_cmd_known(f->cmd))
        return -1;
    if ((f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND) &&
        (f->nblocks > VEM_HJ1239_MAX_BLOCKS || f->vendor_blocks > VEM_HJ1239_MAX_VENDOR))
        return -1;
    size_t n = s_data_len(f);
    if (n > 0xFFFF || cap < n + VEM_HJ1239_MIN_FRAME)
        return -1;
    uint8_t *p = out;
    p[0] = p[1] = '#';
    p[2] = f->cmd;
    if (f->header == VEM_HJ1239_HEADER_PLATFORM) {
        p[3] = f->response;
        memcpy(p + 4, f->vin, 17);
    } else {
        memcpy(p + 3, f->vin, 17);
        p[20] = f->sw_version;
    }
    p[21] = f->encryption;
    s_put16(p + 22, (uint32_t)n);
    uint8_t *d = p + VEM_HJ1239_DATA_AT;
    bool timed = f->cmd != VEM_HJ1239_CMD_ACTIVATION_REPLY &&
                 (f->cmd != VEM_HJ1239_CMD_TIME_SYNC || f->has_time);
    if (timed && !vem_hj1239_time_encode(f->time, d))
        return -1;
    uint8_t *e = d + (timed ? 6 : 0);
    switch (f->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        s_put16(e, f->seq);
        memcpy(e + 2, f->iccid, 20);
        e += 22;
        break;
    case VEM_HJ1239_CMD_LOGOUT:
        s_put16(e, f->seq);
        e += 2;
        break;
    case VEM_HJ1239_CMD_TIME_SYNC:
        break;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        s_put16(e, f->seq);
        e[2] = f->pos_status;
        s_put32(e + 3, f->lon_raw);
        s_put32(e + 7, f->lat_raw);
        e += 11;
        break;
    case VEM_HJ1239_CMD_ACTIVATION:
        if (f->sig.rlen == 0 || f->sig.rlen > VEM_HJ1239_MAX_SIG_PART || f->sig.slen == 0 ||
            f->sig.slen > VEM_HJ1239_MAX_SIG_PART)
            return -1;
        memcpy(e, f->chip_id, 16);
        memcpy(e + 16, f->pubkey, 64);
        memcpy(e + 80, f->act_vin, 17);
        e = s_put_sig(e + 97, &f->sig);
        break;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        e[0] = f->act_status;
        e[1] = f->act_info;
        e += 2;
        break;
    default:
        if ((f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME) &&
            (f->sig.rlen == 0 || f->sig.rlen > VEM_HJ1239_MAX_SIG_PART || f->sig.slen == 0 ||
             f->sig.slen > VEM_HJ1239_MAX_SIG_PART))
            return -1;
        e = s_put_realtime(e, f);
        if (!e)
            return -1;
        break;
    }
    if ((size_t)(e - d) != n)
        return -1;
    e[0] = vem_hj1239_bcc(p + 2, n + 22);
    *out_len = n + VEM_HJ1239_MIN_FRAME;
    return 0;
}

/* ---- equality ------------------------------------------------------------------------------ */

static bool s_block_equal(const vem_hj1239_frame_t *fa, const vem_hj1239_block_t *a,
                          const vem_hj1239_frame_t *fb, const vem_hj1239_block_t *b, bool bt,
                          bool serial)
{
    if (a->type != b->type || a->novalue != b->novalue || (bt && a->time != b->time) ||
        (serial && a->seq != b->seq))
        return false;
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(a->type, &n);
    for (size_t i = 0; i < n; i++)
        if (a->raw[list[i]] != b->raw[list[i]])
            return false;
    if (a->type != VEM_HJ1239_BLOCK_OBD)
        return true;
    const vem_hj1239_obd_t *oa = &fa->obd[a->obd], *ob = &fb->obd[b->obd];
    if (memcmp(oa->vin, ob->vin, 17) || memcmp(oa->scin, ob->scin, 18) ||
        memcmp(oa->cvn, ob->cvn, 18) || memcmp(oa->iupr, ob->iupr, 36) || oa->dtc_n != ob->dtc_n)
        return false;
    return memcmp(&fa->dtcs[oa->dtc_first], &fb->dtcs[ob->dtc_first],
                  oa->dtc_n * sizeof fa->dtcs[0]) == 0;
}

static bool s_sig_equal(const vem_hj1239_sig_t *a, const vem_hj1239_sig_t *b)
{
    return a->rlen == b->rlen && a->slen == b->slen && memcmp(a->r, b->r, a->rlen) == 0 &&
           memcmp(a->s, b->s, a->slen) == 0;
}

bool vem_hj1239_equal(const vem_hj1239_frame_t *a, const vem_hj1239_frame_t *b)
{
    if (a->cmd != b->cmd || a->header != b->header || a->encryption != b->encryption ||
        a->length != b->length || memcmp(a->vin, b->vin, 17) || a->has_time != b->has_time ||
        (a->has_time && a->time != b->time) || a->has_sig != b->has_sig)
        return false;
    if (a->header == VEM_HJ1239_HEADER_TERMINAL ? a->sw_version != b->sw_version
                                                : a->response != b->response)
        return false;
    if (a->has_sig && !s_sig_equal(&a->sig, &b->sig))
        return false;
    switch (a->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        return a->seq == b->seq && memcmp(a->iccid, b->iccid, 20) == 0;
    case VEM_HJ1239_CMD_LOGOUT:
        return a->seq == b->seq;
    case VEM_HJ1239_CMD_TIME_SYNC:
        return true;
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
        return a->seq == b->seq && a->pos_status == b->pos_status && a->lon_raw == b->lon_raw &&
               a->lat_raw == b->lat_raw;
    case VEM_HJ1239_CMD_ACTIVATION:
        return memcmp(a->chip_id, b->chip_id, 16) == 0 && memcmp(a->pubkey, b->pubkey, 64) == 0 &&
               memcmp(a->act_vin, b->act_vin, 17) == 0;
    case VEM_HJ1239_CMD_ACTIVATION_REPLY:
        return a->act_status == b->act_status && a->act_info == b->act_info;
    default:
        break;
    }
    if (a->layout != b->layout || a->seq != b->seq || a->nblocks != b->nblocks ||
        a->vendor_blocks != b->vendor_blocks || a->nblocks > VEM_HJ1239_MAX_BLOCKS ||
        a->vendor_blocks > VEM_HJ1239_MAX_VENDOR)
        return false;
    bool bt = a->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME;
    bool spb = a->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK;
    for (size_t i = 0; i < a->nblocks; i++)
        if (!s_block_equal(a, &a->blocks[i], b, &b->blocks[i], bt, spb))
            return false;
    for (size_t i = 0; i < a->vendor_blocks; i++) {
        const vem_hj1239_vendor_t *va = &a->vendor[i], *vb = &b->vendor[i];
        if (va->len != vb->len || va->after != vb->after ||
            (va->len && memcmp(va->data, vb->data, va->len)))
            return false;
    }
    return true;
}
