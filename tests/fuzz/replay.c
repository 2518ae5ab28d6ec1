/*
 * replay — runs a fuzz target's LLVMFuzzerTestOneInput() on every file of the
 * directories (or files) given, without libFuzzer: built with gcc and
 * ASan/UBSan by `make fuzz-replay`, so `make check` replays the committed corpus and
 * the inputs that once crashed on a machine without clang.
 *
 * Exit 0 when every input ran; a crash or a failed property aborts, after saying which
 * file it was. gcc's UBSan runtime dies without calling back: with $REPLAY_TRACE set, the
 * name of each input is written to that file before it runs, so the last one is the culprit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__has_include)
#if __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/common_interface_defs.h>
#define HAVE_SANITIZER_CALLBACK 1
#endif
#endif

static char current[4096];

static void say_current(void)
{
	static const char pre[] = "\nreplay: the input that failed: ";
	if (write(STDERR_FILENO, pre, sizeof pre - 1) < 0 || write(STDERR_FILENO, current, strlen(current)) < 0 ||
	    write(STDERR_FILENO, "\n", 1) < 0)
		return;
}

static void on_signal(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path)
{
	size_t len;
	snprintf(current, sizeof current, "%s", path);
	const char *trace = getenv("REPLAY_TRACE");
	if (trace && *trace) {
		FILE *f = fopen(trace, "w");
		if (f) {
			fprintf(f, "%s\n", path);
			fclose(f);
		}
	}
	char *data = read_file(path, &len);
	if (!data) {
		perror(path);
		return -1;
	}
	/* An exact-size copy, so ASan sees a read past the input as libFuzzer would. */
	uint8_t *copy = xmalloc(len ? len : 1);
	memcpy(copy, data, len);
	free(data);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	return 0;
}

static int run_path(const char *path, size_t *count)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0; /* a target with no regression inputs yet */
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			grow(&names, &cap, n + 1, sizeof *names);
			names[n++] = xasprintf("%s/%s", path, e->d_name);
		}
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat fs;
		if (stat(names[i], &fs) == 0 && S_ISREG(fs.st_mode)) {
			(*count)++;
			if (run_file(names[i]) != 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
#ifdef HAVE_SANITIZER_CALLBACK
	__sanitizer_set_death_callback(say_current);
#endif
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGBUS, on_signal);
	signal(SIGFPE, on_signal);
	LLVMFuzzerInitialize(&argc, &argv);
	size_t count = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) != 0)
			rc = 1;
	printf("%zu inputs\n", count);
	return rc;
}
