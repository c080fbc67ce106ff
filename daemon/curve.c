/* curve — CURVE endpoints and their ZAP handler; see curve.h.
 *
 * A clients directory is read into a sorted array of 32-byte keys (with the file's name for
 * the logs); a reload builds the new array without the lock and swaps it in under it, so the
 * handler and ingest wait for a pointer swap at most. A generation number, bumped by every
 * swap, lets ingest keep the verdict on the last key it checked until the keys change. */
#include "curve.h"

#include "actor.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_PARTS    7 /* version, request id, domain, address, identity, mechanism, key */
#define S_MAX_CLIENTS  100000
#define S_ENDPOINTS    2

typedef struct {
    uint8_t key[32];
    char name[64];      /* the file name without .pub */
    char stations[256]; /* the station ids it may deliver for, each followed by '\n' */
} s_client_t;

struct vem_curve_endpoint {
    vem_curve_t *owner;
    char domain[16];
    char *clients_dir;
    char public_key[VEM_CURVE_KEY_TEXT], secret_key[VEM_CURVE_KEY_TEXT];
    s_client_t *clients; /* sorted by key; guarded by owner->lock */
    size_t nclients;
    atomic_uint generation;
    /* ingest's cache: the verdict on the last User-Id checked, at a generation */
    char last_user[VEM_CURVE_KEY_TEXT];
    unsigned last_generation;
    bool last_ok;
    char last_stations[256];
    vem_counter_t *admitted, *unknown, *revoked;
    vem_gauge_t *nkeys;
};

struct vem_curve {
    void *zctx;
    vem_metrics_t *metrics;
    pthread_mutex_t lock;
    vem_curve_endpoint_t endpoints[S_ENDPOINTS];
    size_t n;
};

vem_curve_t *vem_curve_new(void *zctx, vem_metrics_t *metrics)
{
    vem_curve_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->zctx = zctx;
    self->metrics = metrics;
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

void vem_curve_destroy(vem_curve_t **self_p)
{
    vem_curve_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++) {
        free(self->endpoints[i].clients);
        free(self->endpoints[i].clients_dir);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* ---- key files ------------------------------------------------------------------------------ */

/* True when text is the Z85 form of a 32-byte key; its bytes into key when not NULL. */
static bool s_z85_key(const char *text, uint8_t key[32])
{
    uint8_t scratch[32];
    return text && strlen(text) == 40 && zmq_z85_decode(key ? key : scratch, text) != NULL;
}

int vem_curve_read_key(const char *path, char public_key[VEM_CURVE_KEY_TEXT],
                       char secret_key[VEM_CURVE_KEY_TEXT], char *err, size_t errlen)
{
    config_t lc;
    config_init(&lc);
    int rc = -1;
    const char *pub = NULL, *sec = NULL;
    if (!config_read_file(&lc, path)) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        else
            snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&lc),
                     config_error_text(&lc));
        goto done;
    }
    if (!config_lookup_string(&lc, "public_key", &pub) || !s_z85_key(pub, NULL)) {
        snprintf(err, errlen, "%s: no public_key of 40 Z85 characters", path);
        goto done;
    }
    if (secret_key) {
        char derived[VEM_CURVE_KEY_TEXT];
        if (!config_lookup_string(&lc, "secret_key", &sec) || !s_z85_key(sec, NULL)) {
            snprintf(err, errlen, "%s: no secret_key of 40 Z85 characters", path);
            goto done;
        }
        if (zmq_curve_public(derived, sec) != 0 || strcmp(derived, pub) != 0) {
            snprintf(err, errlen, "%s: secret_key does not belong to public_key", path);
            goto done;
        }
        snprintf(secret_key, VEM_CURVE_KEY_TEXT, "%s", sec);
    }
    snprintf(public_key, VEM_CURVE_KEY_TEXT, "%s", pub);
    rc = 0;
done:
    config_destroy(&lc);
    return rc;
}

int vem_curve_read_server_key(const char *path, char public_key[VEM_CURVE_KEY_TEXT],
                              char secret_key[VEM_CURVE_KEY_TEXT], char *err, size_t errlen)
{
    /* a secret anyone on the machine can read is no secret: refused, as ssh refuses */
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & S_IROTH)) {
        snprintf(err, errlen, "%s: readable by every user; chmod o-r (the secret key is in it)",
                 path);
        return -1;
    }
    return vem_curve_read_key(path, public_key, secret_key, err, errlen);
}

/* Writes text to path, created (never replaced) with mode. */
static int s_write_new(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (!ok)
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    return ok ? 0 : -1;
}

int vem_curve_generate(const char *dir, const char *name, char *err, size_t errlen)
{
    if (!*name || strchr(name, '/') || name[0] == '.' || strlen(name) >= 60) {
        snprintf(err, errlen, "key name '%s': want 1..59 characters, no '/', not starting with '.'",
                 name);
        return -1;
    }
    char pub[VEM_CURVE_KEY_TEXT], sec[VEM_CURVE_KEY_TEXT];
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    char path[4096], text[512];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    snprintf(text, sizeof text,
             "# vemd CURVE key pair '%s' (Z85, zmq_curve_keypair): keep this file secret\n"
             "public_key = \"%s\";\nsecret_key = \"%s\";\n",
             name, pub, sec);
    if (s_write_new(path, 0600, text, err, errlen) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    snprintf(text, sizeof text,
             "# vemd CURVE public key '%s' (Z85): goes into the peer's clients directory\n"
             "public_key = \"%s\";\n",
             name, pub);
    return s_write_new(path, 0644, text, err, errlen);
}

int vem_curve_client(void *sock, const char *client_key, const char *server_key, char *err,
                     size_t errlen)
{
    char pub[VEM_CURVE_KEY_TEXT], sec[VEM_CURVE_KEY_TEXT], server[VEM_CURVE_KEY_TEXT];
    if (vem_curve_read_key(client_key, pub, sec, err, errlen) != 0 ||
        vem_curve_read_key(server_key, server, NULL, err, errlen) != 0)
        return -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) != 0) {
        snprintf(err, errlen, "CURVE client keys: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* ---- clients directories -------------------------------------------------------------------- */

static int s_client_cmp(const void *a, const void *b)
{
    return memcmp(((const s_client_t *)a)->key, ((const s_client_t *)b)->key, 32);
}

/* The station ids a client key may deliver for: its .pub file's `stations = ["ID", ...];`, or
 * else its name alone; each id followed by '\n' in out. 0, or -1 with err. */
static int s_read_stations(const char *path, const char *name, char *out, size_t cap, char *err,
                           size_t errlen)
{
    config_t lc;
    config_init(&lc);
    int rc = 0;
    size_t used = 0;
    out[0] = '\0';
    const config_setting_t *list = NULL;
    if (config_read_file(&lc, path))
        list = config_lookup(&lc, "stations");
    int n = list ? config_setting_length(list) : 0;
    if (list && !config_setting_is_array(list)) {
        snprintf(err, errlen, "%s: stations must be an array of station ids", path);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < (list ? n : 1); i++) {
        const char *id = list ? config_setting_get_string_elem(list, i) : name;
        if (!id || !*id || strchr(id, '\n') || used + strlen(id) + 2 > cap) {
            snprintf(err, errlen,
                     "%s: stations[%d] is not a station id, or the list is over %zu "
                     "bytes",
                     path, i, cap - 1);
            rc = -1;
            break;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s\n", id);
    }
    config_destroy(&lc);
    return rc;
}

/* Reads every NAME.pub of dir into a sorted array (caller frees). 0, or -1 with err: a
 * directory that cannot be read, a .pub file without a key, or too many. */
static int s_read_clients(const char *dir, s_client_t **out, size_t *n, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot read: %s", dir, strerror(errno));
        return -1;
    }
    s_client_t *list = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".pub") != 0)
            continue;
        if (count == S_MAX_CLIENTS) {
            snprintf(err, errlen, "%s: more than %d client keys", dir, S_MAX_CLIENTS);
            rc = -1;
            break;
        }
        char path[4096], pub[VEM_CURVE_KEY_TEXT];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (vem_curve_read_key(path, pub, NULL, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            list = realloc(list, cap * sizeof *list);
            if (!list)
                abort();
        }
        s_z85_key(pub, list[count].key);
        snprintf(list[count].name, sizeof list[count].name, "%.*s", (int)(len - 4), e->d_name);
        if (s_read_stations(path, list[count].name, list[count].stations,
                            sizeof list[count].stations, err, errlen) != 0) {
            rc = -1;
            break;
        }
        count++;
    }
    closedir(d);
    if (rc != 0) {
        free(list);
        return -1;
    }
    if (count)
        qsort(list, count, sizeof *list, s_client_cmp);
    *out = list;
    *n = count;
    return 0;
}

/* The client with key, or NULL; under the lock. */
static const s_client_t *s_find(const vem_curve_endpoint_t *ep, const uint8_t key[32])
{
    s_client_t probe;
    memcpy(probe.key, key, 32);
    return ep->nclients ? bsearch(&probe, ep->clients, ep->nclients, sizeof probe, s_client_cmp)
                        : NULL;
}

/* Reads ep's directory and puts its keys in place; logs what changed. */
static int s_load(vem_curve_endpoint_t *ep, char *err, size_t errlen)
{
    s_client_t *list;
    size_t n;
    if (s_read_clients(ep->clients_dir, &list, &n, err, errlen) != 0)
        return -1;
    size_t added = 0, kept = 0;
    pthread_mutex_lock(&ep->owner->lock);
    for (size_t i = 0; i < n; i++) {
        if (s_find(ep, list[i].key))
            kept++;
        else
            added++;
    }
    size_t removed = ep->nclients - kept;
    free(ep->clients);
    ep->clients = list;
    ep->nclients = n;
    atomic_fetch_add(&ep->generation, 1);
    pthread_mutex_unlock(&ep->owner->lock);
    vem_gauge_set(ep->nkeys, (int64_t)n);
    vem_log(n ? VEM_LOG_INFO : VEM_LOG_WARNING, "curve",
            "%s: %zu client keys from %s (%zu added, %zu removed)%s", ep->domain, n,
            ep->clients_dir, added, removed, n ? "" : ": no client can connect");
    return 0;
}

int vem_curve_add(vem_curve_t *self, const char *domain, const char *key_path,
                  const char *clients_dir, char *err, size_t errlen)
{
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "%s: this libzmq was built without CURVE", domain);
        return -1;
    }
    if (self->n == S_ENDPOINTS || strlen(domain) >= sizeof self->endpoints[0].domain) {
        snprintf(err, errlen, "%s: no room for another CURVE endpoint", domain);
        return -1;
    }
    vem_curve_endpoint_t *ep = &self->endpoints[self->n];
    *ep = (vem_curve_endpoint_t){.owner = self};
    snprintf(ep->domain, sizeof ep->domain, "%s", domain);
    if (vem_curve_read_server_key(key_path, ep->public_key, ep->secret_key, err, errlen) != 0)
        return -1;
    ep->clients_dir = strdup(clients_dir);
    if (!ep->clients_dir)
        abort();
    const char *ref[] = {"endpoint", domain, "reason", "unknown_key", NULL};
    const char *rev[] = {"endpoint", domain, "reason", "revoked", NULL};
    const char *adm[] = {"endpoint", domain, NULL};
    const char *help = "CURVE clients refused: a key not listed at the handshake (unknown_key), "
                       "or a message from a key removed since (revoked).";
    ep->unknown = vem_metrics_counter(self->metrics, "vem_curve_refused_total", help, ref);
    ep->revoked = vem_metrics_counter(self->metrics, "vem_curve_refused_total", help, rev);
    ep->admitted = vem_metrics_counter(self->metrics, "vem_curve_handshakes_total",
                                       "CURVE handshakes the ZAP handler admitted.", adm);
    ep->nkeys = vem_metrics_gauge(self->metrics, "vem_curve_client_keys",
                                  "Client keys listed in the clients directory.", adm);
    if (s_load(ep, err, errlen) != 0) {
        free(ep->clients_dir);
        return -1;
    }
    self->n++;
    return 0;
}

vem_curve_endpoint_t *vem_curve_endpoint(vem_curve_t *self, const char *domain)
{
    for (size_t i = 0; self && i < self->n; i++)
        if (strcmp(self->endpoints[i].domain, domain) == 0)
            return &self->endpoints[i];
    return NULL;
}

int vem_curve_reload(vem_curve_t *self)
{
    int rc = 0;
    for (size_t i = 0; self && i < self->n; i++) {
        char err[512];
        if (s_load(&self->endpoints[i], err, sizeof err) != 0) {
            vem_log(VEM_LOG_ERR, "curve", "%s: keeping the previous client keys: %s",
                    self->endpoints[i].domain, err);
            rc = -1;
        }
    }
    return rc;
}

int vem_curve_serve(vem_curve_endpoint_t *ep, void *sock, char *err, size_t errlen)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, ep->secret_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ep->domain, strlen(ep->domain)) != 0) {
        snprintf(err, errlen, "%s: CURVE server options: %s", ep->domain,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    /* ZMQ_ZAP_ENFORCE_DOMAIN (93, a draft option): with it a missing handler refuses rather
     * than admits. Stable builds refuse the option; the start order covers them (curve.h). */
    zmq_setsockopt(sock, 93, &one, sizeof one);
    return 0;
}

/* ---- checking messages (ingest) ------------------------------------------------------------- */

bool vem_curve_admits_msg(vem_curve_endpoint_t *ep, zmq_msg_t *msg, char *stations, size_t cap)
{
    const char *user = zmq_msg_gets(msg, "User-Id");
    unsigned gen = atomic_load(&ep->generation);
    bool ok = false;
    uint8_t key[32];
    if (user && gen == ep->last_generation && strcmp(user, ep->last_user) == 0) {
        ok = ep->last_ok;
    } else if (user && s_z85_key(user, key)) {
        pthread_mutex_lock(&ep->owner->lock);
        const s_client_t *c = s_find(ep, key);
        ok = c != NULL;
        snprintf(ep->last_stations, sizeof ep->last_stations, "%s", c ? c->stations : "");
        pthread_mutex_unlock(&ep->owner->lock);
        snprintf(ep->last_user, sizeof ep->last_user, "%s", user);
        ep->last_generation = gen;
        ep->last_ok = ok;
    }
    if (stations && cap)
        snprintf(stations, cap, "%s", ok ? ep->last_stations : "");
    if (ok)
        return true;
    const char *address = zmq_msg_gets(msg, "Peer-Address");
    vem_counter_add(ep->revoked, 1);
    vem_log(VEM_LOG_WARNING, "curve",
            "%s: message from %s dropped: key %s is no longer listed in %s", ep->domain,
            address ? address : "?", user ? user : "(none)", ep->clients_dir);
    return false;
}

bool vem_curve_station_listed(const char *stations, const char *station_id)
{
    size_t n = strlen(station_id);
    for (const char *p = stations; *p;) {
        const char *end = strchr(p, '\n');
        if (!end)
            break;
        if ((size_t)(end - p) == n && memcmp(p, station_id, n) == 0)
            return true;
        p = end + 1;
    }
    return false;
}

/* ---- the ZAP handler ------------------------------------------------------------------------ */

/* Sends one ZAP reply (RFC 27): version, request id, status, text, user id, metadata. */
static void s_zap_reply(void *rep, zmq_msg_t *request_id, const char *status, const char *text,
                        const char *user)
{
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    zmq_msg_send(request_id, rep, ZMQ_SNDMORE);
    zmq_send(rep, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(rep, "", 0, 0);
}

/* Text of a message part, cut to cap - 1 bytes. */
static void s_part_text(zmq_msg_t *part, char *out, size_t cap)
{
    size_t n = zmq_msg_size(part) < cap - 1 ? zmq_msg_size(part) : cap - 1;
    memcpy(out, zmq_msg_data(part), n);
    out[n] = '\0';
}

/* Reads one request and answers it: 200 with the key as User-Id for a listed key of a CURVE
 * endpoint, 400 for anything else. */
static void s_zap_answer(vem_curve_t *self, void *rep)
{
    zmq_msg_t parts[S_ZAP_PARTS];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, rep, 0) < 0) {
            zmq_msg_close(&part);
            break;
        }
        more = zmq_msg_more(&part);
        if (n < S_ZAP_PARTS)
            parts[n++] = part;
        else
            zmq_msg_close(&part); /* a longer request than CURVE's: refused below */
    }
    if (n < 2) { /* cannot even name the request: REP still owes an answer */
        zmq_msg_t empty;
        zmq_msg_init(&empty);
        s_zap_reply(rep, &empty, "500", "malformed request", "");
        zmq_msg_close(&empty);
        goto done;
    }
    char domain[32] = "", address[64] = "?", mechanism[16] = "", key_text[VEM_CURVE_KEY_TEXT] = "";
    if (n == S_ZAP_PARTS) {
        s_part_text(&parts[2], domain, sizeof domain);
        s_part_text(&parts[3], address, sizeof address);
        s_part_text(&parts[5], mechanism, sizeof mechanism);
    }
    vem_curve_endpoint_t *ep = vem_curve_endpoint(self, domain);
    bool curve =
        n == S_ZAP_PARTS && strcmp(mechanism, "CURVE") == 0 && zmq_msg_size(&parts[6]) == 32;
    if (curve)
        zmq_z85_encode(key_text, zmq_msg_data(&parts[6]), 32);
    bool listed = false;
    if (ep && curve) {
        pthread_mutex_lock(&self->lock);
        listed = s_find(ep, zmq_msg_data(&parts[6])) != NULL;
        pthread_mutex_unlock(&self->lock);
    }
    if (listed) {
        vem_counter_add(ep->admitted, 1);
        s_zap_reply(rep, &parts[1], "200", "OK", key_text);
    } else {
        if (ep)
            vem_counter_add(ep->unknown, 1);
        vem_log(VEM_LOG_WARNING, "curve", "%s: refused %s client %s from %s: %s",
                *domain ? domain : "?", *mechanism ? mechanism : "?", *key_text ? key_text : "-",
                address,
                !ep      ? "not a CURVE endpoint"
                : !curve ? "not a CURVE handshake"
                         : "key not listed in the clients directory");
        s_zap_reply(rep, &parts[1], "400", "key not listed", "");
    }
done:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
}

static void s_zap_ready(void *ctx, void *rep)
{
    s_zap_answer(ctx, rep);
}

void vem_curve_zap_actor(void *pipe, void *args)
{
    vem_curve_t *self = args;
    void *rep = zmq_socket(self->zctx, ZMQ_REP);
    int zero = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(rep, S_ZAP_ENDPOINT) != 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot bind %s: %s", S_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        zmq_close(rep);
        vem_actor_ready(pipe, why);
        return;
    }
    vem_actor_ready(pipe, NULL);
    vem_actor_serve(pipe, rep, s_zap_ready, self);
    zmq_close(rep);
}

/* ---- endpoints ------------------------------------------------------------------------------ */

bool vem_curve_is_local(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}
