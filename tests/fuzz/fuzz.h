/*
 * fuzz.h — what every hrsync fuzz target shares: the process set-up hrsync's main()
 * does (C.UTF-8 character type, UTC), property checks that abort with a message,
 * a reader that takes typed values off the input, and a private scratch directory
 * for the loaders that take a path (config_load, mapping_load).
 *
 * Built two ways: with clang and libFuzzer (`make fuzz`), and with gcc and a plain
 * main() in replay.c (`make fuzz-replay`), so everything here is portable C11.
 *
 * Sandbox: config and mapping files name other files (mapping globs, map_file,
 * password_file, secret files). fuzz_yaml_paths_ok() refuses inputs whose YAML could
 * make the loaders read outside the scratch directory (an absolute path, "..", or a
 * ${VAR} that expands to one): reading /dev/zero or /proc/kcore would hang the fuzzer
 * without finding anything about hrsync.
 */
#ifndef HRSYNC_FUZZ_H
#define HRSYNC_FUZZ_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "yaml.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that failed: say which and abort, so libFuzzer keeps the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                   \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "\nfuzz property failed at %s:%d: %s\n  ", __FILE__, __LINE__, \
				#cond);                                                         \
			fprintf(stderr, __VA_ARGS__);                                           \
			fputc('\n', stderr);                                                    \
			abort();                                                                \
		}                                                                               \
	} while (0)

/*
 * Bugs found and reported (tests/fuzz/README.md lists them). A build with
 * -DFUZZ_SKIP_KNOWN steps around them, so a long campaign finds the next bug instead of
 * the same one again; the normal build and the replay always check them. All eight below
 * are fixed (59b04e4): their FUZZ_KNOWN_BUG(n) guards in the harnesses can go.
 *   1 jv_parse() accepts strings that are not UTF-8 (overlong, surrogates, > U+10FFFF)
 *   2 link_mappings() memcpy(NULL, ..., 0) with no mapping (a build flag: -fno-sanitize=nonnull-attribute)
 *   3 format datetime/unix accept UTC offsets beyond +-23:59 ("+99:99" gives "+100:39")
 *   4 bucket_wait_ms() overflows int64 for rates parse_rate() accepts ("1e-13/h")
 *   5 load_map_file() turns a YAML value that is not a scalar into jv_strn(NULL, 0) (the same flag as 2)
 *   6 platform_message() passes a platform's "\n" through: one log line becomes several
 *   7 a CSV map_file is not checked for UTF-8: CP1251 bytes reach the payload
 *   8 check_field_links() dereferences a NULL target for an ssn: ref with no employees mapping
 */
#ifdef FUZZ_SKIP_KNOWN
#define FUZZ_KNOWN_BUG(n) ((n) > 0)
#else
#define FUZZ_KNOWN_BUG(n) ((n) < 0)
#endif

/* The environment ${NAME} and { env: NAME } may use in fuzzed configs. */
static const char *const fuzz_env[][2] = {
	{"HRSYNC_FUZZ_TOKEN", "fuzz-token-3f9a1c"},
	{"HRSYNC_FUZZ_URL", "https://pf.example.test/api/v3"},
	{"HRSYNC_FUZZ_CONNINFO", "host=localhost dbname=erp user=hrsync"},
	{"HRSYNC_FUZZ_EMPTY", ""},
};

static char fuzz_dir_path[96];

static inline void fuzz_rm_dir(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				char *p = xasprintf("%s/%s", path, e->d_name);
				unlink(p);
				free(p);
			}
		closedir(d);
	}
	rmdir(path);
}

static inline void fuzz_dir_remove(void)
{
	if (!fuzz_dir_path[0])
		return;
	fuzz_rm_dir(fuzz_dir_path);
	fuzz_dir_path[0] = '\0';
}

/*
 * A crash ends the process without atexit(): remove the scratch directories
 * (hrsync-fuzz.PID.XXXXXX) of processes that are gone.
 */
static inline void fuzz_dir_reap(const char *tmp)
{
	DIR *d = opendir(tmp);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid;
		char rest[16];
		if (sscanf(e->d_name, "hrsync-fuzz.%ld.%15s", &pid, rest) != 2 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *p = xasprintf("%s/%s", tmp, e->d_name);
		fuzz_rm_dir(p);
		free(p);
	}
	closedir(d);
}

/* What hrsync's main() does before anything else, plus a fixed zone and environment. */
static inline void fuzz_setup(bool want_dir)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < ARRAY_LEN(fuzz_env); i++)
		setenv(fuzz_env[i][0], fuzz_env[i][1], 1);
	if (want_dir && !fuzz_dir_path[0]) {
		/* tmpfs when there is one: creating and removing files on ext4 costs more than the test. */
		const char *tmp = getenv("TMPDIR");
		if (!(tmp && *tmp && strlen(tmp) < 60))
			tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		fuzz_dir_reap(tmp);
		snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/hrsync-fuzz.%ld.XXXXXX", tmp, (long)getpid());
		if (!mkdtemp(fuzz_dir_path)) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(fuzz_dir_remove);
		/* { credential: NAME } reads $CREDENTIALS_DIRECTORY/NAME: the scratch directory. */
		setenv("CREDENTIALS_DIRECTORY", fuzz_dir_path, 1);
	} else if (!want_dir) {
		unsetenv("CREDENTIALS_DIRECTORY");
	}
}

/* ---- reading typed values off the input ---- */

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fz_u8(struct fz *f)
{
	if (!f->n)
		return 0;
	f->n--;
	return *f->p++;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | fz_u8(f);
	return v;
}

/* A uniform-ish draw in [0, 1), as backoff_ms() asks. */
static inline double fz_unit(struct fz *f)
{
	return (double)(fz_u64(f) >> 11) / 9007199254740992.0;
}

/* Up to the next '\n' (not included); a NUL-terminated copy the caller frees. */
static inline char *fz_line(struct fz *f)
{
	const uint8_t *nl = memchr(f->p, '\n', f->n);
	size_t len = nl ? (size_t)(nl - f->p) : f->n;
	char *s = xstrndup((const char *)f->p, len);
	f->p += len + (nl ? 1 : 0);
	f->n -= len + (nl ? 1 : 0);
	return s;
}

/* The rest of the input, NUL-terminated (it may hold NULs of its own). Caller frees. */
static inline char *fz_rest(struct fz *f, size_t *len)
{
	char *s = xstrndup((const char *)f->p, f->n);
	if (len)
		*len = f->n;
	f->p += f->n;
	f->n = 0;
	return s;
}

static inline bool fuzz_has_ctrl_newline(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

/* ---- several files in one input ---- */

/*
 * The input is a main file, then optional parts, each starting with a line
 * "#@NAME" (a YAML comment, so a lone main file stays valid YAML). NAME is a file name
 * of [A-Za-z0-9._-] (at most 40 characters), or a word the target gives a meaning
 * ("row" for fuzz_mapping).
 */
struct fuzz_part {
	char name[48];
	const char *text;
	size_t len;
};

#define FUZZ_MAX_PARTS 8

static inline size_t fuzz_split(const uint8_t *data, size_t size, const char *main_name, struct fuzz_part *parts)
{
	size_t np = 0;
	snprintf(parts[0].name, sizeof parts[0].name, "%s", main_name);
	parts[0].text = (const char *)data;
	np = 1;
	size_t start = 0;
	for (size_t i = 0; i + 2 < size; i++) {
		if (!(i == 0 || data[i - 1] == '\n') || data[i] != '#' || data[i + 1] != '@')
			continue;
		size_t j = i + 2, k = 0;
		char name[48];
		while (j < size && data[j] != '\n' && k < 40) {
			char c = (char)data[j];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			      c == '_' || c == '-'))
				break;
			name[k++] = c;
			j++;
		}
		if (k == 0 || (j < size && data[j] != '\n') || np == FUZZ_MAX_PARTS)
			continue;
		name[k] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		parts[np - 1].len = i - start;
		start = j < size ? j + 1 : j;
		snprintf(parts[np].name, sizeof parts[np].name, "%s", name);
		parts[np].text = (const char *)data + start;
		np++;
		i = j;
	}
	parts[np - 1].len = size - start;
	return np;
}

/* Remove the files that are not among parts: one input's files must not leak into the next. */
static inline void fuzz_dir_clear(const struct fuzz_part *parts, size_t np)
{
	DIR *d = opendir(fuzz_dir_path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			bool keep = false;
			for (size_t i = 0; i < np; i++)
				keep |= !strcmp(parts[i].name, e->d_name);
			if (keep)
				continue; /* rewritten in place: cheaper than a new inode */
			char *p = xasprintf("%s/%s", fuzz_dir_path, e->d_name);
			unlink(p);
			free(p);
		}
	closedir(d);
}

/* Write one file (mode 600, as secret files must be). Returns its path; caller frees. */
static inline char *fuzz_dir_write(const char *name, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", fuzz_dir_path, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		abort();
	}
	while (len) {
		ssize_t w = write(fd, text, len);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			perror(path);
			abort();
		}
		text += w;
		len -= (size_t)w;
	}
	close(fd);
	return path;
}

/* ---- the sandbox: no path in the YAML may leave the scratch directory ---- */

struct fuzz_seen {
	const void **v;
	size_t n, cap;
};

static inline bool fuzz_seen_add(struct fuzz_seen *s, const void *p)
{
	/* Aliases share nodes and an anchor may even hold itself: visit each node once. */
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == p)
			return false;
	grow(&s->v, &s->cap, s->n + 1, sizeof *s->v);
	s->v[s->n++] = p;
	return true;
}

static inline bool fuzz_path_safe(const char *s)
{
	/* The same ${NAME} expansion config.c applies to string options. */
	struct sb b = {0};
	sb_puts(&b, "");
	for (const char *p = s; *p;) {
		const char *end;
		if (p[0] == '$' && p[1] == '{' && (end = strchr(p + 2, '}'))) {
			char *name = xstrndup(p + 2, (size_t)(end - p - 2));
			const char *v = getenv(name);
			free(name);
			if (v)
				sb_puts(&b, v);
			p = end + 1;
			continue;
		}
		if (*p != '\\') /* glob() reads "\\.\\." as ".." */
			sb_putc(&b, *p);
		p++;
	}
	const char *x = sb_str(&b);
	bool ok = x[0] != '/' && !strstr(x, "..");
	sb_free(&b);
	return ok;
}

static inline bool fuzz_walk_safe(const struct ynode *n, struct fuzz_seen *seen)
{
	if (!n || !fuzz_seen_add(seen, n))
		return true;
	if (n->type == YN_SCALAR)
		return fuzz_path_safe(n->str);
	for (size_t i = 0; i < n->n; i++) {
		if (n->type == YN_MAP && !fuzz_walk_safe(n->keys[i], seen))
			return false;
		if (!fuzz_walk_safe(n->vals[i], seen))
			return false;
	}
	return true;
}

/* true when no scalar of text (parsed as YAML) could name a file outside the scratch directory. */
static inline bool fuzz_yaml_paths_ok(const char *text, size_t len)
{
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("sandbox-check", text, len, &d);
	diag_free(&d);
	if (!doc)
		return true; /* the loaders will refuse it too */
	struct fuzz_seen seen = {0};
	bool ok = fuzz_walk_safe(doc->root, &seen);
	free(seen.v);
	ydoc_free(doc);
	return ok;
}

/*
 * Split the input into files, refuse it if any could escape the sandbox, and write
 * them all. Returns the number of parts (0: refused); parts named in `skip` are not
 * written (they are not files).
 */
static inline size_t fuzz_write_files(const uint8_t *data, size_t size, const char *main_name, struct fuzz_part *parts,
			       const char *skip)
{
	size_t np = fuzz_split(data, size, main_name, parts);
	for (size_t i = 0; i < np; i++) {
		if (skip && !strcmp(parts[i].name, skip))
			continue;
		if (!fuzz_yaml_paths_ok(parts[i].text, parts[i].len))
			return 0;
	}
	fuzz_dir_clear(parts, np);
	for (size_t i = 0; i < np; i++) {
		if (skip && !strcmp(parts[i].name, skip))
			continue;
		free(fuzz_dir_write(parts[i].name, parts[i].text, parts[i].len));
	}
	return np;
}

#endif
