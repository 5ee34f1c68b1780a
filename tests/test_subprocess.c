/* test_subprocess.c — external commands: stdin in, stdout out, exit status and stderr tail in
 * the message, timeouts that kill the whole process group, no deadlock on large data, data
 * never interpreted by a shell. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "util/subprocess.h"
#include "util/timer.h"

static void test_roundtrip(void **state) {
    (void)state;
    CkError err = {{0}};
    char *out = NULL;
    size_t len = 0;
    const char *in = "{\"instruction\": \"$(touch /tmp/never) `id` ; rm -rf /\"}\n";
    SubprocessOptions opt = {10, 0};
    assert_int_equal(subprocess_run_shell("cat", in, strlen(in), &opt, &out, &len, &err), 0);
    assert_int_equal(len, strlen(in));
    assert_string_equal(out, in); /* the data went through stdin untouched */
    free(out);
    char *argv[] = {"printf", "%s|%s", "a b", "$HOME", NULL}; /* argv: no shell, no expansion */
    assert_int_equal(subprocess_run(argv, NULL, 0, &opt, &out, &len, &err), 0);
    assert_string_equal(out, "a b|$HOME");
    free(out);
    /* a command that ignores its stdin is fine, however much we would write */
    size_t big = (size_t)4 << 20;
    char *data = malloc(big);
    memset(data, 'x', big);
    assert_int_equal(subprocess_run_shell("echo ignored", data, big, &opt, &out, &len, &err), 0);
    assert_string_equal(out, "ignored\n");
    free(out);
    /* both directions at once: 4 MiB through cat does not deadlock */
    assert_int_equal(subprocess_run_shell("cat", data, big, &opt, &out, &len, &err), 0);
    assert_int_equal(len, big);
    assert_true(memcmp(out, data, big) == 0);
    free(out);
    free(data);
}

static void test_failures(void **state) {
    (void)state;
    CkError err = {{0}};
    char *out = (char *)1;
    SubprocessOptions opt = {10, 0};
    assert_int_equal(subprocess_run_shell("echo partial; echo 'bad thing happened' >&2; exit 3",
                                          "x", 1, &opt, &out, NULL, &err),
                     -1);
    assert_null(out);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "exited with status 3"));
    assert_non_null(strstr(err.msg, "bad thing happened"));
    assert_non_null(strstr(err.msg, "exit 3")); /* names the command */
    /* only the tail of a long stderr is quoted */
    assert_int_equal(subprocess_run_shell("i=0; while [ $i -lt 500 ]; do echo line $i >&2; "
                                          "i=$((i+1)); done; exit 1",
                                          NULL, 0, &opt, &out, NULL, &err),
                     -1);
    assert_non_null(strstr(err.msg, "line 499"));
    assert_null(strstr(err.msg, "line 1 "));
    char *argv[] = {"/nonexistent/judge", NULL};
    assert_int_equal(subprocess_run(argv, NULL, 0, &opt, &out, NULL, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "status 127"));
    assert_int_equal(subprocess_run_shell("kill -9 $$", NULL, 0, &opt, &out, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "signal 9"));
    SubprocessOptions small = {10, 100};
    assert_int_equal(subprocess_run_shell("yes", NULL, 0, &small, &out, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "more than 100 bytes"));
}

/* A hanging command, with a child of its own holding the pipes, is killed at the deadline. */
static void test_timeout(void **state) {
    (void)state;
    CkError err = {{0}};
    char *out = NULL;
    SubprocessOptions opt = {0.5, 0};
    double t0 = timer_seconds();
    assert_int_equal(subprocess_run_shell("echo waiting >&2; sleep 30 & sleep 30; wait", "x", 1,
                                          &opt, &out, NULL, &err),
                     -1);
    double dt = timer_seconds() - t0;
    printf("  after %.2f s: %s\n", dt, err.msg);
    assert_true(dt >= 0.45 && dt < 5);
    assert_non_null(strstr(err.msg, "timed out after 0.5 s"));
    assert_non_null(strstr(err.msg, "waiting"));
    /* SIGPIPE from a reader that quits early neither kills us nor stays pending */
    size_t big = (size_t)1 << 20;
    char *data = calloc(1, big);
    opt.timeout_seconds = 10;
    assert_int_equal(
        subprocess_run_shell("head -c 10 > /dev/null", data, big, &opt, &out, NULL, &err), 0);
    free(out);
    free(data);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_timeout),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
