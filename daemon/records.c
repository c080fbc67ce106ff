/* records — sink-neutral worker -> sink messages; see records.h. */
#include "records.h"

#include "hj1239.h"
#include "rsd.h"

#include <stdlib.h>
#include <string.h>

/* A record's fixed part on the wire (copied with memcpy, so alignment never matters). */
typedef struct {
    uint64_t seq;
    int64_t received_us;
    uint32_t nseqs;
    int32_t offset;
    uint32_t data_len;
    uint16_t kind;
    uint16_t detail_len;
    uint8_t source, status, has_vin;
    char vin[17];
} s_wire_t;

static void s_reserve(vem_records_t *r, size_t more)
{
    if (r->len + more <= r->cap)
        return;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + more)
        cap *= 2;
    uint8_t *buf = realloc(r->buf, cap);
    if (!buf)
        abort();
    r->buf = buf;
    r->cap = cap;
}

void vem_records_add(vem_records_t *r, const vem_record_t *rec)
{
    if (r->len == 0) {
        s_reserve(r, sizeof(vem_records_hdr_t));
        vem_records_hdr_t hdr = {.magic = VEM_RECORDS_MAGIC, .first_seq = UINT64_MAX};
        memcpy(r->buf, &hdr, sizeof hdr);
        r->len = sizeof hdr;
        r->count = 0;
    }
    s_wire_t w = {.seq = rec->seq,
                  .received_us = rec->received_us,
                  .nseqs = rec->nseqs ? rec->nseqs : 1,
                  .offset = rec->offset,
                  .data_len = rec->data_len,
                  .kind = rec->kind,
                  .detail_len = rec->detail ? rec->detail_len : 0,
                  .source = rec->source,
                  .status = rec->status,
                  .has_vin = rec->has_vin};
    if (rec->has_vin)
        memcpy(w.vin, rec->vin, sizeof w.vin);
    s_reserve(r, sizeof w + w.detail_len + w.data_len);
    memcpy(r->buf + r->len, &w, sizeof w);
    r->len += sizeof w;
    if (w.detail_len) {
        memcpy(r->buf + r->len, rec->detail, w.detail_len);
        r->len += w.detail_len;
    }
    if (w.data_len) {
        memcpy(r->buf + r->len, rec->data, w.data_len);
        r->len += w.data_len;
    }
    vem_records_hdr_t hdr;
    memcpy(&hdr, r->buf, sizeof hdr);
    if (hdr.count == 0 || rec->received_us < hdr.oldest_us)
        hdr.oldest_us = rec->received_us;
    if (w.seq < hdr.first_seq)
        hdr.first_seq = w.seq;
    if (w.seq + w.nseqs - 1 > hdr.last_seq)
        hdr.last_seq = w.seq + w.nseqs - 1;
    hdr.count++;
    memcpy(r->buf, &hdr, sizeof hdr);
    r->count = hdr.count;
    r->oldest_us = hdr.oldest_us;
}

const uint8_t *vem_records_message(vem_records_t *r, size_t *len)
{
    *len = r->len;
    return r->buf;
}

void vem_records_reset(vem_records_t *r)
{
    r->len = 0;
    r->count = 0;
    r->oldest_us = 0;
}

void vem_records_free(vem_records_t *r)
{
    free(r->buf);
    *r = (vem_records_t){0};
}

bool vem_records_parse(const uint8_t *p, size_t len, vem_records_hdr_t *hdr)
{
    if (len < sizeof *hdr)
        return false;
    memcpy(hdr, p, sizeof *hdr);
    if (hdr->magic != VEM_RECORDS_MAGIC)
        return false;
    size_t off = sizeof *hdr;
    for (uint32_t i = 0; i < hdr->count; i++) {
        s_wire_t w;
        if (len - off < sizeof w)
            return false;
        memcpy(&w, p + off, sizeof w);
        off += sizeof w;
        if (w.nseqs == 0 || (size_t)w.detail_len + w.data_len > len - off)
            return false;
        off += (size_t)w.detail_len + w.data_len;
    }
    return off == len;
}

bool vem_records_next(const uint8_t *p, size_t len, size_t *off, vem_record_t *rec)
{
    if (*off == 0)
        *off = sizeof(vem_records_hdr_t);
    s_wire_t w;
    if (*off + sizeof w > len)
        return false;
    memcpy(&w, p + *off, sizeof w);
    *off += sizeof w;
    *rec = (vem_record_t){.seq = w.seq,
                          .nseqs = w.nseqs,
                          .kind = w.kind,
                          .source = w.source,
                          .status = w.status,
                          .received_us = w.received_us,
                          .offset = w.offset,
                          .has_vin = w.has_vin,
                          .detail = w.detail_len ? (const char *)p + *off : NULL,
                          .detail_len = w.detail_len,
                          .data = p + *off + w.detail_len,
                          .data_len = w.data_len};
    if (w.has_vin) {
        memcpy(rec->vin, w.vin, sizeof w.vin);
        rec->vin[17] = '\0';
    }
    *off += (size_t)w.detail_len + w.data_len;
    return true;
}

const char *vem_records_class_name(uint8_t status)
{
    if (status == VEM_RECORD_CLASS_SPOOL_DAMAGED)
        return "spool_damaged";
    if (status == VEM_RECORD_CLASS_TOO_LARGE)
        return "too_large";
    if (status == VEM_RECORD_CLASS_BAD_VIN)
        return "bad_vin";
    static const char *const sig[] = {"bad_signature", "unsigned",   "no_key",    "chip_activated",
                                      "vin_error",     "vin_switch", "unverified"};
    if (status >= VEM_RECORD_CLASS_BAD_SIGNATURE && status <= VEM_RECORD_CLASS_UNVERIFIED)
        return sig[status - VEM_RECORD_CLASS_BAD_SIGNATURE];
    if (status == VEM_RECORD_CLASS_TOO_MANY_ACTIVATIONS)
        return "too_many_activations";
    if (status == VEM_RECORD_CLASS_STATION_KEY)
        return "station_key";
    if (status == VEM_RECORD_CLASS_KEY_REUSED)
        return "key_reused";
    if (status > VEM_RECORD_CLASS_RSD && status < VEM_RECORD_CLASS_RSD + VEM_RSD_STATUS_COUNT)
        return vem_rsd_status_name((vem_rsd_status_t)(status - VEM_RECORD_CLASS_RSD));
    if (status > 0 && status < VEM_HJ1239_STATUS_COUNT)
        return vem_hj1239_status_name((vem_hj1239_status_t)status);
    return "malformed_body";
}

const char *vem_records_sig_name(uint8_t sig)
{
    static const char *const names[VEM_RECORD_SIGS] = {NULL, "verified", "bad_signature",
                                                       "unsigned", "no_key"};
    return sig < VEM_RECORD_SIGS ? names[sig] : NULL;
}
