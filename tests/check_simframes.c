/* check_simframes — vem-sim's frames decode to what the simulated truck measured. Raw values
 * are worked by hand from the hj1239.md field table: 62.5 km/h / (1/256) = 16000; NOx
 * (38.4 + 200) / 0.05 = 4768; (312.5 + 273) / 0.03125 = 18736; coolant 86 + 40 = 126; torque
 * 48 + 125 = 173; 118.796877 degrees * 1e6 = 118796877. A real-time frame turned into its
 * re-send is byte for byte what the encoder writes for a re-send; vemd's replies are found in
 * a byte stream however it is cut, with garbage and a damaged reply among them. */
#include "reasm.h"
#include "sim_frames.h"

#include <check.h>
#include <string.h>

static vem_sim_sample_t s_sample(void)
{
    return (vem_sim_sample_t){.speed_kmh = 62.5,
                              .baro_kpa = 100.5,
                              .torque_pct = 48,
                              .friction_pct = 6,
                              .engine_rpm = 1450,
                              .fuel_rate_lph = 31.35,
                              .nox_up_ppm = 612.35,
                              .nox_down_ppm = 38.4,
                              .reagent_pct = 72.4,
                              .intake_air_kgph = 842.6,
                              .scr_in_c = 312.5,
                              .scr_out_c = 298.25,
                              .dpf_dp_kpa = 3.4,
                              .coolant_c = 86,
                              .fuel_level_pct = 55.2,
                              .lon = 118.796877,
                              .lat = -32.060255,
                              .odometer_km = 123456.7};
}

START_TEST(stream_block_raw_values)
{
    vem_sim_sample_t s = s_sample();
    vem_hj1239_block_t b;
    vem_sim_stream_block(&s, 1709597350, &b);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_SPEED], 16000);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_NOX_DOWN], 4768);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_SCR_IN], 18736);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_COOLANT], 126);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_TORQUE], 173);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_LON], 118796877);
    ck_assert_uint_eq(b.raw[VEM_HJ1239_F_POS_STATUS], 0x02); /* south, fix valid */
    ck_assert_uint_eq(b.novalue, 0);
}
END_TEST

START_TEST(frames_decode_back)
{
    static vem_hj1239_frame_t scratch, got;
    vem_sim_truck_t truck;
    vem_sim_truck_init(&truck, 1, 7, 118.8, 32.06, VEM_SIM_MIL_ON);
    vem_sim_sample_t samples[10];
    for (int i = 0; i < 10; i++)
        samples[i] = s_sample();
    uint8_t buf[4096];
    const int64_t t0 = 1709597350; /* 2024-03-05 08:09:10 +08:00 */
    for (int hj = 0; hj < 2; hj++) {
        size_t len =
            vem_sim_data(&scratch, &truck, samples, 10, t0, 42, hj == 0, hj, true, buf, sizeof buf);
        ck_assert_uint_gt(len, 0);
        ck_assert_int_eq(vem_hj1239_decode(buf, len, 0, &got, NULL), VEM_HJ1239_OK);
        ck_assert_uint_eq(got.cmd, hj ? VEM_HJ1239_CMD_REALTIME : VEM_HJ1239_CMD_RESEND);
        ck_assert_uint_eq(got.layout, hj ? VEM_HJ1239_LAYOUT_BLOCK_TIME : 0);
        ck_assert(got.has_sig == (hj == 1));
        ck_assert_uint_eq(got.seq, 42);
        ck_assert_int_eq(got.time, t0 + 9);
        ck_assert_int_eq(memcmp(got.vin, "LVEMSIM0000000007", 17), 0);
        ck_assert_uint_eq(got.nblocks, 12); /* OBD + 10 samples + supplementary */
        ck_assert_uint_eq(got.blocks[0].type, VEM_HJ1239_BLOCK_OBD);
        ck_assert_uint_eq(got.blocks[0].raw[VEM_HJ1239_F_MIL], 1);
        ck_assert_uint_eq(got.blocks[0].raw[VEM_HJ1239_F_DTC_COUNT], 2);
        for (int i = 0; i < 10; i++) {
            const vem_hj1239_block_t *b = &got.blocks[1 + i];
            ck_assert_uint_eq(b->type, VEM_HJ1239_BLOCK_STREAM);
            ck_assert_int_eq(b->time, hj ? t0 + i : t0 + 9); /* GB 17691: the frame's time */
            double v;
            ck_assert(vem_hj1239_value(b, VEM_HJ1239_F_NOX_UP, &v));
            ck_assert_double_eq_tol(v, 612.35, 0.025);
            ck_assert(vem_hj1239_value(b, VEM_HJ1239_F_LAT, &v));
            ck_assert_double_eq_tol(v, -32.060255, 0.0000005);
        }
        ck_assert_uint_eq(got.blocks[11].type, VEM_HJ1239_BLOCK_SUPPLEMENTARY);
    }
    size_t len = vem_sim_login(&scratch, truck.vin, t0, 3, buf, sizeof buf);
    ck_assert_int_eq(vem_hj1239_decode(buf, len, 0, &got, NULL), VEM_HJ1239_OK);
    ck_assert_uint_eq(got.cmd, VEM_HJ1239_CMD_LOGIN);
    ck_assert_uint_eq(got.seq, 3);
    ck_assert_int_eq(memcmp(got.iccid, "89860000000000000003", 20), 0);
    len = vem_sim_removal_alarm(&scratch, &truck, t0, 5, buf, sizeof buf);
    ck_assert_int_eq(vem_hj1239_decode(buf, len, 0, &got, NULL), VEM_HJ1239_OK);
    ck_assert_uint_eq(got.cmd, VEM_HJ1239_CMD_REMOVAL_ALARM);
    len = vem_sim_logout(&scratch, truck.vin, t0 + 60, 3, buf, sizeof buf);
    ck_assert_int_eq(vem_hj1239_decode(buf, len, 0, &got, NULL), VEM_HJ1239_OK);
    ck_assert_uint_eq(got.cmd, VEM_HJ1239_CMD_LOGOUT);
    ck_assert_int_eq(got.time, t0 + 60);
}
END_TEST

START_TEST(realtime_turned_into_resend)
{
    static vem_hj1239_frame_t scratch;
    vem_sim_truck_t truck;
    vem_sim_truck_init(&truck, 1, 3, 118.8, 32.06, 0);
    vem_sim_sample_t samples[10];
    for (int i = 0; i < 10; i++)
        samples[i] = s_sample();
    uint8_t live[4096], resend[4096];
    size_t n = vem_sim_data(&scratch, &truck, samples, 10, 1709597350, 7, false, true, false, live,
                            sizeof live);
    size_t m = vem_sim_data(&scratch, &truck, samples, 10, 1709597350, 7, true, true, false, resend,
                            sizeof resend);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(n, m);
    ck_assert_uint_eq(live[2], 0x02);
    vem_sim_as_resend(live, n);
    ck_assert_uint_eq(live[2], 0x03);
    ck_assert_int_eq(memcmp(live, resend, n), 0);
    vem_sim_as_resend(live, n); /* not a real-time frame any more: left alone */
    ck_assert_int_eq(memcmp(live, resend, n), 0);
}
END_TEST

/* vemd's reply (daemon/ingest_reply.c vem_ingest_reply) to a frame of cmd from
 * LVEMSIM0000000003 with time 2024-03-05 08:09:19 Beijing: wire time 18 03 05 08 09 13. */
static void s_reply_bytes(uint8_t cmd, uint8_t out[31])
{
    out[0] = out[1] = '#';
    out[2] = cmd;
    out[3] = 0x01;
    memcpy(out + 4, "LVEMSIM0000000003", 17);
    out[21] = 0x01;
    out[22] = 0x00;
    out[23] = 0x06;
    static const uint8_t wire[6] = {0x18, 0x03, 0x05, 0x08, 0x09, 0x13};
    memcpy(out + 24, wire, 6);
    out[30] = vem_hj1239_bcc(out + 2, 28);
}

START_TEST(reply_parsed)
{
    uint8_t r[31];
    s_reply_bytes(0x02, r);
    vem_sim_reply_t got;
    ck_assert(vem_sim_reply_parse(r, sizeof r, &got));
    ck_assert_uint_eq(got.cmd, 0x02);
    ck_assert_uint_eq(got.flag, 0x01);
    ck_assert_str_eq(got.vin, "LVEMSIM0000000003");
    ck_assert_int_eq(got.time, 1709597359);
    ck_assert(!vem_sim_reply_parse(r, 30, &got)); /* not the reply's length */
    r[27] = 0x20;                                 /* hour 32 */
    ck_assert(!vem_sim_reply_parse(r, sizeof r, &got));
    /* A terminal's own login (the VIN from byte 3, a 28-byte data unit) is not a reply. */
    static vem_hj1239_frame_t scratch;
    uint8_t login[128];
    size_t n = vem_sim_login(&scratch, "LVEMSIM0000000003", 1709597359, 1, login, sizeof login);
    ck_assert(!vem_sim_reply_parse(login, n, &got));
}
END_TEST

/* Login, real-time and re-send replies, a reply with a bad BCC and line noise between them, fed
 * to the reassembler in chunks of every size from 1 to the whole stream: the three good replies
 * come out, in order, every time. */
START_TEST(replies_cut_from_any_chunking)
{
    uint8_t stream[256];
    size_t len = 0;
    static const uint8_t cmds[] = {0x01, 0x02, 0x03};
    for (int i = 0; i < 3; i++) {
        s_reply_bytes(cmds[i], stream + len);
        len += 31;
        if (i == 0) {
            memcpy(stream + len, "#x\r\n", 4); /* noise, with a false start */
            len += 4;
        }
        if (i == 1) {
            s_reply_bytes(0x02, stream + len);
            stream[len + 30] ^= 0xFF; /* damaged on the way */
            len += 31;
        }
    }
    for (size_t chunk = 1; chunk <= len; chunk++) {
        vem_reasm_t *ra = vem_reasm_new(0);
        ck_assert_ptr_nonnull(ra);
        int good = 0, other = 0;
        for (size_t off = 0; off < len; off += chunk) {
            vem_reasm_feed(ra, stream + off, off + chunk <= len ? chunk : len - off);
            vem_reasm_event_t ev;
            while (vem_reasm_next(ra, &ev) != VEM_REASM_NEED_MORE) {
                vem_sim_reply_t got;
                if (ev.kind == VEM_REASM_FRAME && vem_sim_reply_parse(ev.data, ev.len, &got)) {
                    ck_assert_int_lt(good, 3);
                    ck_assert_uint_eq(got.cmd, cmds[good]);
                    ck_assert_int_eq(got.time, 1709597359);
                    good++;
                } else {
                    other++;
                }
            }
        }
        ck_assert_msg(good == 3, "chunks of %zu: %d replies", chunk, good);
        ck_assert_int_gt(other, 0);
        vem_reasm_destroy(&ra);
    }
}
END_TEST

Suite *vem_suite_simframes(void);
Suite *vem_suite_simframes(void)
{
    Suite *s = suite_create("simframes");
    TCase *tc = tcase_create("simframes");
    tcase_add_test(tc, stream_block_raw_values);
    tcase_add_test(tc, frames_decode_back);
    tcase_add_test(tc, realtime_turned_into_resend);
    tcase_add_test(tc, reply_parsed);
    tcase_add_test(tc, replies_cut_from_any_chunking);
    suite_add_tcase(s, tc);
    return s;
}
