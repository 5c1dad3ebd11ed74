/*
 * c-board — an mlbench board plugin written in plain C.
 *
 * It drives the local machine, like the in-tree `host` board, but it is here to
 * show the C ABI of Sources/CMLBenchPlugin/include/mlbench_plugin.h with nothing
 * in between: one exported entry symbol, one descriptor, one board factory and
 * its function table, JSON requests in, JSON replies (or an error message) out.
 * Docs/PluginGuide.md walks through it; Docs/PluginABI.md lists every message.
 *
 * What it implements, honestly:
 *   describe      the machine from uname(2) and /proc/meminfo
 *   reset         nothing to power-cycle: a fresh deployment folder is its clean
 *                 state, so it is ready at once (the manifest says resets_itself)
 *   conditions    observes the kernel, OS and architecture; controls nothing, so
 *                 any condition asked for is refused with MLB_ERROR_UNSUPPORTED
 *   deploy        copies the files into a fresh mkdtemp(3) folder under the
 *                 `work_root` setting (default /tmp)
 *   fetch         copies files out of a deployment folder (or a folder inside it)
 *   cleanup       removes a deployment folder
 *   start_runner, exchange, stop_runner
 *                 NOT implemented: they return MLB_ERROR_UNSUPPORTED with a message
 *                 that says so. A real board would start the runner (posix_spawn
 *                 with pipes, or over SSH) and pass one line of the runner wire
 *                 protocol per exchange. Experiments therefore cannot run on this
 *                 board; `mlbench plugins inspect` and `mlbench lab check` work.
 *
 * Settings (the inventory entry's `settings:`):
 *   work_root     absolute path of the folder deployments are made in
 * Any other setting is refused with MLB_ERROR_INVALID_CONFIG, naming it.
 *
 * Build:  make MLBENCH_INCLUDE=/path/to/mlbench/Sources/CMLBenchPlugin/include
 * The ABI version the descriptor declares is MLB_ABI_VERSION unless overridden
 * with -DC_BOARD_ABI_VERSION=N (tests use it to build a mismatched copy).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mlbench_plugin.h"

#ifndef C_BOARD_ABI_VERSION
#define C_BOARD_ABI_VERSION MLB_ABI_VERSION
#endif

#define C_BOARD_NAME "c-board"
#define C_BOARD_VERSION "1.0.0"
#define C_BOARD_KIND "c-board"
#define C_BOARD_DEFAULT_WORK_ROOT "/tmp"
/* Every deployment folder is <work_root>/c-board-XXXXXX. */
#define C_BOARD_FOLDER_PREFIX "c-board-"

/* ------------------------------------------------------------------------ */
/* A growable text buffer, for replies and messages.                         */

typedef struct {
    char *data;
    size_t length;
    size_t capacity;
    int failed; /* out of memory: the text is incomplete */
} text_buffer;

static void tb_append(text_buffer *tb, const char *bytes, size_t length) {
    if (tb->failed) return;
    if (tb->length + length + 1 > tb->capacity) {
        size_t capacity = tb->capacity ? tb->capacity : 256;
        while (tb->length + length + 1 > capacity) capacity *= 2;
        char *data = realloc(tb->data, capacity);
        if (!data) {
            tb->failed = 1;
            return;
        }
        tb->data = data;
        tb->capacity = capacity;
    }
    memcpy(tb->data + tb->length, bytes, length);
    tb->length += length;
    tb->data[tb->length] = '\0';
}

static void tb_puts(text_buffer *tb, const char *text) { tb_append(tb, text, strlen(text)); }

static void tb_printf(text_buffer *tb, const char *format, ...) {
    char stack[512];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(stack, sizeof stack, format, arguments);
    va_end(arguments);
    if (length < 0) return;
    if ((size_t)length < sizeof stack) {
        tb_append(tb, stack, (size_t)length);
        return;
    }
    char *heap = malloc((size_t)length + 1);
    if (!heap) {
        tb->failed = 1;
        return;
    }
    va_start(arguments, format);
    vsnprintf(heap, (size_t)length + 1, format, arguments);
    va_end(arguments);
    tb_append(tb, heap, (size_t)length);
    free(heap);
}

/* Appends `text` as a JSON string literal (quotes and escapes included). */
static void tb_json_string(text_buffer *tb, const char *text) {
    tb_puts(tb, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '"': tb_puts(tb, "\\\""); break;
        case '\\': tb_puts(tb, "\\\\"); break;
        case '\n': tb_puts(tb, "\\n"); break;
        case '\r': tb_puts(tb, "\\r"); break;
        case '\t': tb_puts(tb, "\\t"); break;
        default:
            if (*p < 0x20) {
                tb_printf(tb, "\\u%04x", *p);
            } else {
                tb_append(tb, (const char *)p, 1);
            }
        }
    }
    tb_puts(tb, "\"");
}

/* "key": "value" (with a leading comma unless first). */
static void tb_member(text_buffer *tb, int *first, const char *key, const char *value) {
    if (!*first) tb_puts(tb, ",");
    *first = 0;
    tb_json_string(tb, key);
    tb_puts(tb, ":");
    tb_json_string(tb, value);
}

static void tb_free(text_buffer *tb) {
    free(tb->data);
    memset(tb, 0, sizeof *tb);
}

/* ------------------------------------------------------------------------ */
/* Replies.                                                                  */

static void reply_text(mlb_reply *reply, const char *text, size_t length) {
    if (reply && reply->write && length > 0) reply->write(reply, text, length);
}

/* Writes a JSON reply and returns MLB_OK (or an error if memory ran out). */
static mlb_status reply_json(mlb_reply *reply, text_buffer *tb) {
    if (tb->failed) {
        static const char message[] = "c-board: out of memory while writing the reply";
        reply_text(reply, message, sizeof message - 1);
        tb_free(tb);
        return MLB_ERROR_FAILED;
    }
    reply_text(reply, tb->data ? tb->data : "{}", tb->data ? tb->length : 2);
    tb_free(tb);
    return MLB_OK;
}

/* Writes an error message and returns `status`. */
static mlb_status reply_error(mlb_reply *reply, mlb_status status, const char *format, ...) {
    char message[2048];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    if (length < 0) length = 0;
    if ((size_t)length >= sizeof message) length = (int)sizeof message - 1;
    reply_text(reply, message, (size_t)length);
    return status;
}

/* ------------------------------------------------------------------------ */
/* A small JSON reader. Requests are small, so a tree is fine. It accepts    */
/* exactly RFC 8259 JSON (what the core's JSONEncoder writes), decodes       */
/* string escapes including \uXXXX surrogate pairs into UTF-8, and refuses   */
/* strings holding NUL, which C strings cannot carry.                        */

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    int boolean;
    double number;
    char *string;              /* JSON_STRING */
    size_t count;              /* JSON_ARRAY, JSON_OBJECT */
    char **keys;               /* JSON_OBJECT: count keys */
    struct json_value *items;  /* JSON_ARRAY, JSON_OBJECT: count values */
} json_value;

typedef struct {
    const char *text;
    size_t position;
    char error[160];
} json_parser;

#define JSON_MAX_DEPTH 64

static void json_free(json_value *value) {
    if (!value) return;
    free(value->string);
    for (size_t i = 0; i < value->count; i++) {
        if (value->keys) free(value->keys[i]);
        if (value->items) json_free(&value->items[i]);
    }
    free(value->keys);
    free(value->items);
    memset(value, 0, sizeof *value);
}

static int json_fail(json_parser *parser, const char *what) {
    if (!parser->error[0]) {
        snprintf(parser->error, sizeof parser->error, "%s at offset %zu", what, parser->position);
    }
    return 0;
}

static void json_skip_space(json_parser *parser) {
    for (;;) {
        char c = parser->text[parser->position];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') parser->position++;
        else return;
    }
}

static int json_hex4(json_parser *parser, unsigned *out) {
    unsigned value = 0;
    for (int i = 0; i < 4; i++) {
        char c = parser->text[parser->position];
        unsigned digit;
        if (c >= '0' && c <= '9') digit = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') digit = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') digit = (unsigned)(c - 'A' + 10);
        else return json_fail(parser, "bad \\u escape");
        value = value * 16 + digit;
        parser->position++;
    }
    *out = value;
    return 1;
}

static void json_put_utf8(text_buffer *tb, unsigned code) {
    char bytes[4];
    size_t length;
    if (code < 0x80) {
        bytes[0] = (char)code;
        length = 1;
    } else if (code < 0x800) {
        bytes[0] = (char)(0xC0 | (code >> 6));
        bytes[1] = (char)(0x80 | (code & 0x3F));
        length = 2;
    } else if (code < 0x10000) {
        bytes[0] = (char)(0xE0 | (code >> 12));
        bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (code & 0x3F));
        length = 3;
    } else {
        bytes[0] = (char)(0xF0 | (code >> 18));
        bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[3] = (char)(0x80 | (code & 0x3F));
        length = 4;
    }
    tb_append(tb, bytes, length);
}

/* Parses a string literal (the parser is on its opening quote). */
static int json_parse_string(json_parser *parser, char **out) {
    text_buffer tb = {0};
    parser->position++; /* the opening quote */
    tb_append(&tb, "", 0);
    for (;;) {
        unsigned char c = (unsigned char)parser->text[parser->position];
        if (c == '\0') {
            tb_free(&tb);
            return json_fail(parser, "unterminated string");
        }
        if (c < 0x20) {
            tb_free(&tb);
            return json_fail(parser, "control character in a string");
        }
        parser->position++;
        if (c == '"') break;
        if (c != '\\') {
            tb_append(&tb, (const char *)&c, 1);
            continue;
        }
        char escape = parser->text[parser->position++];
        switch (escape) {
        case '"': tb_puts(&tb, "\""); break;
        case '\\': tb_puts(&tb, "\\"); break;
        case '/': tb_puts(&tb, "/"); break;
        case 'b': tb_puts(&tb, "\b"); break;
        case 'f': tb_puts(&tb, "\f"); break;
        case 'n': tb_puts(&tb, "\n"); break;
        case 'r': tb_puts(&tb, "\r"); break;
        case 't': tb_puts(&tb, "\t"); break;
        case 'u': {
            unsigned code;
            if (!json_hex4(parser, &code)) {
                tb_free(&tb);
                return 0;
            }
            if (code >= 0xD800 && code <= 0xDBFF) {
                unsigned low;
                if (parser->text[parser->position] != '\\' || parser->text[parser->position + 1] != 'u') {
                    tb_free(&tb);
                    return json_fail(parser, "unpaired surrogate in a string");
                }
                parser->position += 2;
                if (!json_hex4(parser, &low) || low < 0xDC00 || low > 0xDFFF) {
                    tb_free(&tb);
                    return json_fail(parser, "unpaired surrogate in a string");
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            } else if (code >= 0xDC00 && code <= 0xDFFF) {
                tb_free(&tb);
                return json_fail(parser, "unpaired surrogate in a string");
            }
            if (code == 0) {
                tb_free(&tb);
                return json_fail(parser, "NUL character in a string");
            }
            json_put_utf8(&tb, code);
            break;
        }
        default:
            tb_free(&tb);
            return json_fail(parser, "bad escape in a string");
        }
    }
    if (tb.failed) {
        tb_free(&tb);
        return json_fail(parser, "out of memory");
    }
    *out = tb.data;
    return 1;
}

static int json_parse_value(json_parser *parser, json_value *out, int depth);

static int json_append_item(json_parser *parser, json_value *container, char *key, json_value *item) {
    json_value *items = realloc(container->items, (container->count + 1) * sizeof *items);
    if (!items) {
        free(key);
        json_free(item);
        return json_fail(parser, "out of memory");
    }
    container->items = items;
    if (container->type == JSON_OBJECT) {
        char **keys = realloc(container->keys, (container->count + 1) * sizeof *keys);
        if (!keys) {
            free(key);
            json_free(item);
            return json_fail(parser, "out of memory");
        }
        container->keys = keys;
        keys[container->count] = key;
    }
    items[container->count++] = *item;
    return 1;
}

static int json_parse_container(json_parser *parser, json_value *out, int depth) {
    int object = parser->text[parser->position] == '{';
    char close = object ? '}' : ']';
    out->type = object ? JSON_OBJECT : JSON_ARRAY;
    parser->position++;
    json_skip_space(parser);
    if (parser->text[parser->position] == close) {
        parser->position++;
        return 1;
    }
    for (;;) {
        char *key = NULL;
        json_skip_space(parser);
        if (object) {
            if (parser->text[parser->position] != '"') return json_fail(parser, "expected a member name");
            if (!json_parse_string(parser, &key)) return 0;
            json_skip_space(parser);
            if (parser->text[parser->position] != ':') {
                free(key);
                return json_fail(parser, "expected ':'");
            }
            parser->position++;
        }
        json_value item = {0};
        if (!json_parse_value(parser, &item, depth + 1)) {
            free(key);
            return 0;
        }
        if (!json_append_item(parser, out, key, &item)) return 0;
        json_skip_space(parser);
        char c = parser->text[parser->position];
        if (c == ',') {
            parser->position++;
            continue;
        }
        if (c == close) {
            parser->position++;
            return 1;
        }
        return json_fail(parser, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int json_parse_number(json_parser *parser, json_value *out) {
    const char *start = parser->text + parser->position;
    const char *p = start;
    if (*p == '-') p++;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9') p++;
    } else {
        return json_fail(parser, "unexpected character");
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return json_fail(parser, "bad number");
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return json_fail(parser, "bad number");
        while (*p >= '0' && *p <= '9') p++;
    }
    /* strtod is locale-dependent; the core runs in the C locale, and the
     * digits were checked above, so only the value is taken from it. */
    char buffer[64];
    size_t length = (size_t)(p - start);
    if (length >= sizeof buffer) length = sizeof buffer - 1;
    memcpy(buffer, start, length);
    buffer[length] = '\0';
    out->type = JSON_NUMBER;
    out->number = strtod(buffer, NULL);
    parser->position += (size_t)(p - start);
    return 1;
}

static int json_parse_value(json_parser *parser, json_value *out, int depth) {
    memset(out, 0, sizeof *out);
    if (depth > JSON_MAX_DEPTH) return json_fail(parser, "nested too deeply");
    json_skip_space(parser);
    const char *here = parser->text + parser->position;
    switch (*here) {
    case '{':
    case '[':
        if (!json_parse_container(parser, out, depth)) {
            json_free(out);
            return 0;
        }
        return 1;
    case '"':
        out->type = JSON_STRING;
        return json_parse_string(parser, &out->string);
    case 't':
        if (strncmp(here, "true", 4) != 0) return json_fail(parser, "unexpected character");
        out->type = JSON_BOOL;
        out->boolean = 1;
        parser->position += 4;
        return 1;
    case 'f':
        if (strncmp(here, "false", 5) != 0) return json_fail(parser, "unexpected character");
        out->type = JSON_BOOL;
        parser->position += 5;
        return 1;
    case 'n':
        if (strncmp(here, "null", 4) != 0) return json_fail(parser, "unexpected character");
        out->type = JSON_NULL;
        parser->position += 4;
        return 1;
    case '\0':
        return json_fail(parser, "unexpected end of text");
    default:
        return json_parse_number(parser, out);
    }
}

/* Parses a whole document; on failure writes the reason into `error`. */
static int json_parse(const char *text, json_value *out, char *error, size_t error_size) {
    json_parser parser = {.text = text ? text : "{}", .position = 0, .error = ""};
    if (!json_parse_value(&parser, out, 0)) {
        snprintf(error, error_size, "%s", parser.error);
        return 0;
    }
    json_skip_space(&parser);
    if (parser.text[parser.position] != '\0') {
        json_free(out);
        json_fail(&parser, "unexpected text after the JSON value");
        snprintf(error, error_size, "%s", parser.error);
        return 0;
    }
    return 1;
}

/* The member `key` of an object, or NULL. */
static const json_value *json_get(const json_value *object, const char *key) {
    if (!object || object->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; i++) {
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    }
    return NULL;
}

/* The string member `key`, or NULL when absent or not a string. */
static const char *json_get_string(const json_value *object, const char *key) {
    const json_value *value = json_get(object, key);
    return value && value->type == JSON_STRING ? value->string : NULL;
}

/* Parses a request that must be an object; on failure replies and returns 0. */
static int parse_request(const char *request_json, json_value *request, mlb_reply *reply, const char *operation,
                         mlb_status *status) {
    char error[200];
    if (!json_parse(request_json, request, error, sizeof error)) {
        *status = reply_error(reply, MLB_ERROR_INVALID_REQUEST, "%s: the request is not JSON: %s", operation, error);
        return 0;
    }
    if (request->type != JSON_OBJECT) {
        json_free(request);
        *status = reply_error(reply, MLB_ERROR_INVALID_REQUEST, "%s: the request is not a JSON object", operation);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Files.                                                                    */

/* A plain file name: no slash, not empty, not "." or "..". */
static int is_plain_name(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* mkdir -p, mode 0755. */
static int make_directories(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        *p = '/';
    }
    int result = mkdir(copy, 0755) == 0 || errno == EEXIST ? 0 : -1;
    free(copy);
    return result;
}

/* Copies a regular file, keeping its permission bits. Returns 0, or -1 with
 * errno set and `which` naming the file that failed. */
static int copy_file(const char *source, const char *target, const char **which) {
    *which = source;
    int in = open(source, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    struct stat info;
    if (fstat(in, &info) != 0) {
        int saved = errno;
        close(in);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(info.st_mode)) {
        close(in);
        errno = S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    *which = target;
    int out = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, info.st_mode & 0777);
    if (out < 0) {
        int saved = errno;
        close(in);
        errno = saved;
        return -1;
    }
    char buffer[65536];
    for (;;) {
        ssize_t got = read(in, buffer, sizeof buffer);
        if (got == 0) break;
        if (got < 0) {
            if (errno == EINTR) continue;
            *which = source;
            goto failed;
        }
        for (ssize_t done = 0; done < got;) {
            ssize_t put = write(out, buffer + done, (size_t)(got - done));
            if (put < 0) {
                if (errno == EINTR) continue;
                goto failed;
            }
            done += put;
        }
    }
    close(in);
    if (close(out) != 0) return -1;
    return 0;
failed: {
    int saved = errno;
    close(in);
    close(out);
    errno = saved;
    return -1;
}
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw) {
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf; a folder that is already gone is fine. */
static int remove_tree(const char *path) {
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return errno == ENOENT ? 0 : -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The board.                                                                */

typedef struct {
    char *work_root; /* absolute, without a trailing slash (except "/") */
} c_board;

/* Whether `directory` is a deployment folder of this board (depth 0) or a
 * folder inside one (depth > 0, allowed when `inside` is set). Nothing outside
 * the board's own deployments is ever read or removed. */
static int is_deployment(const c_board *board, const char *directory, int inside) {
    size_t root = strlen(board->work_root);
    if (strcmp(board->work_root, "/") == 0) root = 0;
    if (strncmp(directory, board->work_root, root) != 0 || directory[root] != '/') return 0;
    const char *rest = directory + root + 1;
    if (strncmp(rest, C_BOARD_FOLDER_PREFIX, strlen(C_BOARD_FOLDER_PREFIX)) != 0) return 0;
    /* No "." or ".." component anywhere in the rest. */
    for (const char *p = rest; *p;) {
        const char *end = strchr(p, '/');
        size_t length = end ? (size_t)(end - p) : strlen(p);
        if (length == 0 || (length == 1 && p[0] == '.') || (length == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (!end) break;
        if (!inside) return 0;
        p = end + 1;
    }
    return 1;
}

static mlb_status board_create(const char *config_json, void **instance, mlb_reply *reply) {
    if (!instance) return reply_error(reply, MLB_ERROR_INVALID_REQUEST, "create() was called without an instance pointer");
    json_value config;
    char error[200];
    if (!json_parse(config_json, &config, error, sizeof error)) {
        return reply_error(reply, MLB_ERROR_INVALID_CONFIG, "cannot read the configuration: %s", error);
    }
    if (config.type != JSON_OBJECT) {
        json_free(&config);
        return reply_error(reply, MLB_ERROR_INVALID_CONFIG, "the configuration is not a JSON object");
    }
    const char *kind = json_get_string(&config, "kind");
    if (kind && kind[0] && strcmp(kind, C_BOARD_KIND) != 0) {
        mlb_status status = reply_error(reply, MLB_ERROR_INVALID_CONFIG,
                                        "this plugin provides no kind '%s' (it provides: " C_BOARD_KIND ")", kind);
        json_free(&config);
        return status;
    }

    /* Settings: an object (or absent/null, meaning none). */
    const char *work_root = C_BOARD_DEFAULT_WORK_ROOT;
    const json_value *settings = json_get(&config, "settings");
    if (settings && settings->type != JSON_NULL) {
        if (settings->type != JSON_OBJECT) {
            json_free(&config);
            return reply_error(reply, MLB_ERROR_INVALID_CONFIG, "settings must be a mapping");
        }
        for (size_t i = 0; i < settings->count; i++) {
            const char *key = settings->keys[i];
            const json_value *value = &settings->items[i];
            if (strcmp(key, "work_root") == 0) {
                if (value->type != JSON_STRING || value->string[0] != '/') {
                    json_free(&config);
                    return reply_error(reply, MLB_ERROR_INVALID_CONFIG, "setting 'work_root': expected an absolute path");
                }
                work_root = value->string;
            } else {
                mlb_status status = reply_error(reply, MLB_ERROR_INVALID_CONFIG,
                                                "unknown setting '%s' (known: work_root)", key);
                json_free(&config);
                return status;
            }
        }
    }

    c_board *board = calloc(1, sizeof *board);
    if (board) board->work_root = strdup(work_root);
    json_free(&config);
    if (!board || !board->work_root) {
        free(board);
        return reply_error(reply, MLB_ERROR_FAILED, "out of memory");
    }
    /* Drop trailing slashes so that prefixes compare cleanly. */
    for (size_t n = strlen(board->work_root); n > 1 && board->work_root[n - 1] == '/'; n--) board->work_root[n - 1] = '\0';
    *instance = board;
    return MLB_OK;
}

static void board_destroy(void *instance) {
    c_board *board = instance;
    if (!board) return;
    free(board->work_root);
    free(board);
}

/* Reads MemTotal and MemAvailable (bytes) from /proc/meminfo. */
static int read_meminfo(unsigned long long *total, unsigned long long *available) {
    FILE *file = fopen("/proc/meminfo", "re");
    if (!file) return 0;
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, file)) {
        unsigned long long kib;
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
            *total = kib * 1024;
            found |= 1;
        } else if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
            *available = kib * 1024;
            found |= 2;
        }
    }
    fclose(file);
    return found & 1 ? found : 0;
}

/* describe {} -> {"name","architecture","memories":[{"name","size_bytes","used_bytes"}]} */
static mlb_status board_describe(void *instance, const char *request_json, mlb_reply *reply) {
    (void)instance;
    (void)request_json;
    struct utsname names;
    if (uname(&names) != 0) return reply_error(reply, MLB_ERROR_DEVICE, "describe: uname: %s", strerror(errno));
    text_buffer tb = {0};
    int first = 1;
    tb_puts(&tb, "{");
    tb_member(&tb, &first, "name", names.nodename);
    tb_member(&tb, &first, "architecture", names.machine);
    tb_puts(&tb, ",\"memories\":[");
    unsigned long long total = 0, available = 0;
    int found = read_meminfo(&total, &available);
    if (found) {
        tb_printf(&tb, "{\"name\":\"ram\",\"size_bytes\":%llu", total);
        if ((found & 2) && available <= total) tb_printf(&tb, ",\"used_bytes\":%llu", total - available);
        tb_puts(&tb, "}");
    }
    tb_puts(&tb, "]}");
    return reply_json(reply, &tb);
}

/* reset {"timeout_ms"} -> {"ready":true,"log"}: nothing to power-cycle. */
static mlb_status board_reset(void *instance, const char *request_json, mlb_reply *reply) {
    (void)instance;
    (void)request_json;
    text_buffer tb = {0};
    int first = 0; /* "ready" comes first */
    tb_puts(&tb, "{\"ready\":true");
    tb_member(&tb, &first, "log", "c-board is ready (the local machine is not power-cycled: each deployment is a fresh folder)");
    tb_puts(&tb, "}");
    return reply_json(reply, &tb);
}

/* conditions {"apply":{...}} -> {"applied":{},"observed":{...}}. Nothing is
 * controllable here, so any condition asked for is refused. */
static mlb_status board_conditions(void *instance, const char *request_json, mlb_reply *reply) {
    (void)instance;
    json_value request;
    mlb_status status;
    if (!parse_request(request_json, &request, reply, "conditions", &status)) return status;
    const json_value *apply = json_get(&request, "apply");
    if (apply && apply->type == JSON_OBJECT && apply->count > 0) {
        status = reply_error(reply, MLB_ERROR_UNSUPPORTED,
                             "condition '%s' cannot be controlled on the c-board (it controls none; it observes kernel, "
                             "kernel_version, os, architecture, hostname)",
                             apply->keys[0]);
        json_free(&request);
        return status;
    }
    json_free(&request);

    struct utsname names;
    if (uname(&names) != 0) return reply_error(reply, MLB_ERROR_DEVICE, "conditions: uname: %s", strerror(errno));
    text_buffer tb = {0};
    int first = 1;
    tb_puts(&tb, "{\"applied\":{},\"observed\":{");
    tb_member(&tb, &first, "architecture", names.machine);
    tb_member(&tb, &first, "hostname", names.nodename);
    tb_member(&tb, &first, "kernel", names.release);
    tb_member(&tb, &first, "kernel_version", names.version);
    tb_member(&tb, &first, "os", names.sysname);
    tb_puts(&tb, "}}");
    return reply_json(reply, &tb);
}

/* deploy {"files":[{"source","name"}]} -> {"directory"} */
static mlb_status board_deploy(void *instance, const char *request_json, mlb_reply *reply) {
    c_board *board = instance;
    json_value request;
    mlb_status status;
    if (!parse_request(request_json, &request, reply, "deploy", &status)) return status;
    const json_value *files = json_get(&request, "files");
    if (!files || files->type != JSON_ARRAY) {
        json_free(&request);
        return reply_error(reply, MLB_ERROR_INVALID_REQUEST, "deploy: 'files' must be a list");
    }
    for (size_t i = 0; i < files->count; i++) {
        const char *source = json_get_string(&files->items[i], "source");
        const char *name = json_get_string(&files->items[i], "name");
        if (!source || !name) {
            json_free(&request);
            return reply_error(reply, MLB_ERROR_INVALID_REQUEST, "deploy: file %zu needs a 'source' and a 'name'", i);
        }
        if (!is_plain_name(name)) {
            status = reply_error(reply, MLB_ERROR_INVALID_REQUEST, "deploy: '%s' is not a plain file name", name);
            json_free(&request);
            return status;
        }
    }

    if (make_directories(board->work_root) != 0) {
        status = reply_error(reply, MLB_ERROR_DEVICE, "deploy: cannot create the work root %s: %s", board->work_root,
                             strerror(errno));
        json_free(&request);
        return status;
    }
    text_buffer directory = {0};
    tb_printf(&directory, "%s/" C_BOARD_FOLDER_PREFIX "XXXXXX", strcmp(board->work_root, "/") == 0 ? "" : board->work_root);
    if (directory.failed || !mkdtemp(directory.data)) {
        status = reply_error(reply, MLB_ERROR_DEVICE, "deploy: cannot create a folder in %s: %s", board->work_root,
                             strerror(errno));
        tb_free(&directory);
        json_free(&request);
        return status;
    }
    for (size_t i = 0; i < files->count; i++) {
        const char *source = json_get_string(&files->items[i], "source");
        const char *name = json_get_string(&files->items[i], "name");
        text_buffer target = {0};
        tb_printf(&target, "%s/%s", directory.data, name);
        const char *which = source;
        if (target.failed || copy_file(source, target.data, &which) != 0) {
            int saved = errno;
            int missing = saved == ENOENT && which == source;
            status = reply_error(reply, missing ? MLB_ERROR_INVALID_REQUEST : MLB_ERROR_DEVICE,
                                 "deploy: cannot copy %s to %s: %s", source, target.data ? target.data : name,
                                 strerror(saved));
            tb_free(&target);
            remove_tree(directory.data);
            tb_free(&directory);
            json_free(&request);
            return status;
        }
        tb_free(&target);
    }
    json_free(&request);

    text_buffer tb = {0};
    int first = 1;
    tb_puts(&tb, "{");
    tb_member(&tb, &first, "directory", directory.data);
    tb_puts(&tb, "}");
    tb_free(&directory);
    return reply_json(reply, &tb);
}

/* The runner operations are not implemented by this example: see the top of
 * the file. MLB_ERROR_UNSUPPORTED tells the core exactly that. */
static mlb_status board_runner_unsupported(const char *operation, mlb_reply *reply) {
    return reply_error(reply, MLB_ERROR_UNSUPPORTED,
                       "%s: the c-board example does not run runners (it demonstrates the C ABI: describe, reset, "
                       "conditions, deploy, fetch, cleanup); use the host board to run experiments",
                       operation);
}

/* start_runner {"command","environment","directory","start_timeout_ms"} -> unsupported */
static mlb_status board_start_runner(void *instance, const char *request_json, mlb_reply *reply) {
    (void)instance;
    (void)request_json;
    return board_runner_unsupported("start_runner", reply);
}

/* exchange {"session","message","timeout_ms"} -> unsupported */
static mlb_status board_exchange(void *instance, const char *request_json, mlb_reply *reply) {
    (void)instance;
    (void)request_json;
    return board_runner_unsupported("exchange", reply);
}

/* stop_runner {"session"} -> unsupported */
static mlb_status board_stop_runner(void *instance, const char *request_json, mlb_reply *reply) {
    (void)instance;
    (void)request_json;
    return board_runner_unsupported("stop_runner", reply);
}

/* fetch {"directory","names":[...],"destination"} -> {} */
static mlb_status board_fetch(void *instance, const char *request_json, mlb_reply *reply) {
    c_board *board = instance;
    json_value request;
    mlb_status status;
    if (!parse_request(request_json, &request, reply, "fetch", &status)) return status;
    const char *directory = json_get_string(&request, "directory");
    const char *destination = json_get_string(&request, "destination");
    const json_value *names = json_get(&request, "names");
    if (!directory || !destination || !names || names->type != JSON_ARRAY) {
        json_free(&request);
        return reply_error(reply, MLB_ERROR_INVALID_REQUEST, "fetch: needs 'directory', 'names' (a list) and 'destination'");
    }
    if (!is_deployment(board, directory, 1)) {
        status = reply_error(reply, MLB_ERROR_INVALID_REQUEST, "fetch: '%s' is not a deployment of this board", directory);
        json_free(&request);
        return status;
    }
    for (size_t i = 0; i < names->count; i++) {
        if (names->items[i].type != JSON_STRING || !is_plain_name(names->items[i].string)) {
            json_free(&request);
            return reply_error(reply, MLB_ERROR_INVALID_REQUEST, "fetch: name %zu is not a plain file name", i);
        }
    }
    if (make_directories(destination) != 0) {
        status = reply_error(reply, MLB_ERROR_FAILED, "fetch: cannot create %s: %s", destination, strerror(errno));
        json_free(&request);
        return status;
    }
    for (size_t i = 0; i < names->count; i++) {
        text_buffer source = {0}, target = {0};
        tb_printf(&source, "%s/%s", directory, names->items[i].string);
        tb_printf(&target, "%s/%s", destination, names->items[i].string);
        const char *which = NULL;
        if (source.failed || target.failed || copy_file(source.data, target.data, &which) != 0) {
            int saved = errno;
            status = reply_error(reply, MLB_ERROR_DEVICE, "fetch: cannot copy %s to %s: %s", source.data ? source.data : "?",
                                 target.data ? target.data : "?", strerror(saved));
            tb_free(&source);
            tb_free(&target);
            json_free(&request);
            return status;
        }
        tb_free(&source);
        tb_free(&target);
    }
    json_free(&request);
    text_buffer tb = {0};
    tb_puts(&tb, "{}");
    return reply_json(reply, &tb);
}

/* cleanup {"directory"} -> {} (a folder already gone is fine) */
static mlb_status board_cleanup(void *instance, const char *request_json, mlb_reply *reply) {
    c_board *board = instance;
    json_value request;
    mlb_status status;
    if (!parse_request(request_json, &request, reply, "cleanup", &status)) return status;
    const char *directory = json_get_string(&request, "directory");
    if (!directory) {
        json_free(&request);
        return reply_error(reply, MLB_ERROR_INVALID_REQUEST, "cleanup: needs 'directory'");
    }
    if (!is_deployment(board, directory, 0)) {
        status = reply_error(reply, MLB_ERROR_INVALID_REQUEST, "cleanup: '%s' is not a deployment of this board", directory);
        json_free(&request);
        return status;
    }
    if (remove_tree(directory) != 0) {
        status = reply_error(reply, MLB_ERROR_DEVICE, "cleanup: cannot remove %s: %s", directory, strerror(errno));
        json_free(&request);
        return status;
    }
    json_free(&request);
    text_buffer tb = {0};
    tb_puts(&tb, "{}");
    return reply_json(reply, &tb);
}

/* ------------------------------------------------------------------------ */
/* The descriptor.                                                           */

static const mlb_board_table board_table = {
    .struct_size = sizeof(mlb_board_table),
    .describe = board_describe,
    .reset = board_reset,
    .conditions = board_conditions,
    .deploy = board_deploy,
    .start_runner = board_start_runner,
    .exchange = board_exchange,
    .stop_runner = board_stop_runner,
    .fetch = board_fetch,
    .cleanup = board_cleanup,
};

static const mlb_factory factories[] = {
    {
        .role = MLB_ROLE_BOARD,
        .kind = C_BOARD_KIND,
        .create = board_create,
        .destroy = board_destroy,
        .table = &board_table,
    },
};

static const mlb_plugin_descriptor descriptor = {
    .abi_version = C_BOARD_ABI_VERSION,
    .name = C_BOARD_NAME,
    .version = C_BOARD_VERSION,
    .description = "The local machine as a board, written in plain C (an example of the plugin C ABI)",
    .factory_count = sizeof factories / sizeof factories[0],
    .factories = factories,
};

/* The one exported symbol. Everything else is hidden (-fvisibility=hidden). */
__attribute__((visibility("default"))) const mlb_plugin_descriptor *mlbench_plugin_entry(void) {
    return &descriptor;
}
