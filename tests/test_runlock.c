/* test_runlock.c — one writer per run directory, with real processes: a second locker is
 * refused naming the holder's pid, the lock of a SIGKILLed holder is taken over; and a child
 * armed with parentdeath dies (SIGTERM) when its parent is SIGKILLed. Every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "util/parentdeath.h"
#include "util/runlock.h"

#define WAIT_MS 5000 /* the longest any step may take */

extern char **environ;

/* Reads exactly size bytes from fd within WAIT_MS; returns 0, or -1 on timeout or EOF. */
static int read_within(int fd, void *buf, size_t size) {
    size_t got = 0;
    while (got < size) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, WAIT_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Waits up to WAIT_MS for the child pid to end; returns 0 with its status, or -1. */
static int wait_within(pid_t pid, int *status) {
    for (int ms = 0; ms <= WAIT_MS; ms += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return 0;
        if (r < 0 && errno != EINTR) return -1;
        usleep(10 * 1000);
    }
    return -1;
}

/* In a forked child: never outlive a broken test (SIGALRM ends it), else wait for a signal. */
_Noreturn static void child_wait_forever(void) {
    alarm(10);
    for (;;) pause();
}

/* Forks a process that locks dir and then waits to be killed; returns its pid once it holds
 * the lock. */
static pid_t start_holder(const char *dir) {
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        RunLock l = {0};
        CkError err = {{0}};
        char ok = runlock_acquire(&l, dir, &err) == 0 ? '1' : '0';
        if (write(ready[1], &ok, 1) != 1) _exit(1);
        child_wait_forever();
    }
    close(ready[1]);
    char ok = 0;
    int rc = read_within(ready[0], &ok, 1);
    close(ready[0]);
    if (rc != 0 || ok != '1') {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the holder process could not lock %s", dir);
    }
    return pid;
}

static void test_second_writer_refused_then_stale_taken_over(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    pid_t holder = start_holder(dir);
    RunLock l = {0};
    CkError err = {{0}};
    char expected[600];
    snprintf(expected, sizeof expected, "%s is in use by pid %ld", dir, (long)holder);
    assert_int_equal(runlock_acquire(&l, dir, &err), -1);
    assert_string_equal(err.msg, expected);
    assert_false(l.held);
    /* a pid that cannot be read gives the generic message */
    char lock_file[600];
    snprintf(lock_file, sizeof lock_file, "%s/%s", dir, RUNLOCK_FILE);
    assert_int_equal(test_write_file(lock_file, "garbage", 7), 0);
    assert_int_equal(runlock_acquire(&l, dir, &err), -1);
    snprintf(expected, sizeof expected, "%s is in use by another process", dir);
    assert_string_equal(err.msg, expected);
    /* the holder dies without releasing: its lock is taken over */
    int status = 0;
    assert_int_equal(kill(holder, SIGKILL), 0);
    assert_int_equal(wait_within(holder, &status), 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(runlock_acquire(&l, dir, &err), 0);
    assert_true(l.held);
    char *text = test_read_file(lock_file, NULL);
    snprintf(expected, sizeof expected, "%ld\n", (long)getpid());
    assert_string_equal(text, expected); /* our pid, the garbage cut off */
    free(text);
    /* spawned commands do not inherit the lock */
    int flags = fcntl(l.fd, F_GETFD);
    assert_true(flags >= 0 && (flags & FD_CLOEXEC));
    runlock_release(&l);
    assert_false(l.held);
    struct stat st;
    assert_int_equal(stat(lock_file, &st), 0); /* the file stays */
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

static void test_two_dirs_release_reacquire(void **state) {
    (void)state;
    char *a = test_temp_dir(), *b = test_temp_dir();
    RunLock la = {0}, lb = {0}, again = {0};
    CkError err = {{0}};
    assert_int_equal(runlock_acquire(&la, a, &err), 0);
    assert_int_equal(runlock_acquire(&lb, b, &err), 0);
    /* flock belongs to the open file: a second lock of a in this process is refused too */
    char expected[600];
    snprintf(expected, sizeof expected, "%s is in use by pid %ld", a, (long)getpid());
    assert_int_equal(runlock_acquire(&again, a, &err), -1);
    assert_string_equal(err.msg, expected);
    /* a held RunLock is not silently overwritten */
    assert_int_equal(runlock_acquire(&la, b, &err), -1);
    assert_non_null(strstr(err.msg, "already holds a lock"));
    runlock_release(&la);
    runlock_release(&la); /* twice is fine */
    assert_int_equal(runlock_acquire(&again, a, &err), 0);
    runlock_release(&again);
    assert_int_equal(runlock_acquire(&la, a, &err), 0);
    runlock_release(&la);
    runlock_release(&lb);
    RunLock zero = {0};
    runlock_release(&zero);
    assert_int_equal(test_remove_dir(a), 0);
    assert_int_equal(test_remove_dir(b), 0);
    free(a);
    free(b);
}

static void test_bad_dirs(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char path[600], expected[700];
    RunLock l = {0};
    CkError err = {{0}};
    snprintf(path, sizeof path, "%s/absent", dir);
    assert_int_equal(runlock_acquire(&l, path, &err), -1);
    snprintf(expected, sizeof expected, "run directory %s does not exist", path);
    assert_string_equal(err.msg, expected);
    snprintf(path, sizeof path, "%s/file", dir);
    assert_int_equal(test_write_file(path, "x", 1), 0);
    assert_int_equal(runlock_acquire(&l, path, &err), -1);
    snprintf(expected, sizeof expected, "cannot lock %s: not a directory", path);
    assert_string_equal(err.msg, expected);
    snprintf(path, sizeof path, "%s/absent/out.json", dir);
    assert_int_equal(runlock_acquire_file(&l, path, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    assert_int_equal(runlock_acquire_file(&l, "results/", &err), -1);
    assert_string_equal(err.msg, "cannot lock results/: not a file name");
    assert_false(l.held);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

static void test_file_locks(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char out[600], other[600], expected[700], lock_file[700];
    snprintf(out, sizeof out, "%s/model_outputs.json", dir);
    snprintf(other, sizeof other, "%s/annotations.json", dir);
    RunLock a = {0}, b = {0}, c = {0}, d = {0};
    CkError err = {{0}};
    assert_int_equal(runlock_acquire_file(&a, out, &err), 0);
    assert_int_equal(runlock_acquire_file(&b, out, &err), -1);
    snprintf(expected, sizeof expected, "%s is in use by pid %ld", out, (long)getpid());
    assert_string_equal(err.msg, expected);
    /* another file of the folder, and the folder itself, are separate locks */
    assert_int_equal(runlock_acquire_file(&c, other, &err), 0);
    assert_int_equal(runlock_acquire(&d, dir, &err), 0);
    snprintf(lock_file, sizeof lock_file, "%s/.model_outputs.json%s", dir, RUNLOCK_FILE);
    struct stat st;
    assert_int_equal(stat(lock_file, &st), 0);
    runlock_release(&a);
    runlock_release(&c);
    runlock_release(&d);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* The test process becomes a subreaper, so that an orphaned grandchild is reparented to it
 * and it can waitpid for it. */
static void become_subreaper(int on) {
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0), 0);
}

static void test_child_dies_with_parent(void **state) {
    (void)state;
    become_subreaper(1);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t a = fork();
    assert_true(a >= 0);
    if (a == 0) { /* A: the spawner, about to be SIGKILLed */
        close(ready[0]);
        pid_t b = fork();
        if (b == 0) { /* B: the spawned command */
            signal(SIGTERM, SIG_DFL);
            CkError err = {{0}};
            long msg[2] = {(long)getpid(), parentdeath_arm(getppid(), &err) == 0};
            if (write(ready[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(1);
            child_wait_forever();
        }
        child_wait_forever();
    }
    close(ready[1]);
    long msg[2] = {0, 0};
    int rc = read_within(ready[0], msg, sizeof msg);
    close(ready[0]);
    int status = 0;
    kill(a, SIGKILL);
    assert_int_equal(wait_within(a, &status), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(msg[1], 1); /* B armed */
    /* B gets SIGTERM from the kernel and, reparented to us, is reaped here */
    rc = wait_within((pid_t)msg[0], &status);
    if (rc != 0) kill((pid_t)msg[0], SIGKILL), waitpid((pid_t)msg[0], NULL, 0);
    become_subreaper(0);
    assert_int_equal(rc, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
}

static void test_parent_gone_before_arming(void **state) {
    (void)state;
    become_subreaper(1);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t a = fork();
    assert_true(a >= 0);
    if (a == 0) {
        close(ready[0]);
        pid_t parent = getpid();
        if (fork() == 0) {
            /* wait until A has exited and we were reparented, then arm too late */
            for (int ms = 0; getppid() == parent && ms < WAIT_MS; ms += 10) usleep(10 * 1000);
            CkError err = {{0}};
            int armed = parentdeath_arm(parent, &err) == 0;
            int sig = -1;
            prctl(PR_GET_PDEATHSIG, &sig);
            char reply[600];
            snprintf(reply, sizeof reply, "%d %d %s", armed, sig, err.msg);
            if (write(ready[1], reply, sizeof reply) != (ssize_t)sizeof reply) _exit(1);
            _exit(0);
        }
        _exit(0); /* A exits at once */
    }
    close(ready[1]);
    int status = 0;
    assert_int_equal(wait_within(a, &status), 0);
    char reply[600] = "";
    int rc = read_within(ready[0], reply, sizeof reply);
    close(ready[0]);
    /* reap B (reparented to us) */
    for (int ms = 0; ms < WAIT_MS && waitpid(-1, NULL, WNOHANG) == 0; ms += 10) usleep(10 * 1000);
    become_subreaper(0);
    assert_int_equal(rc, 0);
    char expected[600];
    snprintf(expected, sizeof expected, "0 0 the parent process %ld has already exited", (long)a);
    assert_string_equal(reply, expected); /* refused, and nothing left armed */
}

/* The spawned side of test_spawned_command_dies_with_parent, run as `test_runlock
 * --armed-child FD`: what cutkit's main() will do (arm from CUTKIT_PARENT_PID) and report
 * its pid and the result on FD. */
static int armed_child(int fd) {
    CkError err = {{0}};
    long msg[2] = {(long)getpid(), parentdeath_arm_from_env(&err) == 0};
    if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) return 1;
    child_wait_forever();
}

/* The protocol end to end: a spawner posix_spawns this binary with parentdeath_child_env
 * (as cli/spawn.c will), the binary arms itself from the environment at startup, and the
 * spawner's SIGKILL ends it with SIGTERM. */
static void test_spawned_command_dies_with_parent(void **state) {
    (void)state;
    become_subreaper(1);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t a = fork();
    assert_true(a >= 0);
    if (a == 0) {
        close(ready[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", ready[1]);
        char *argv[] = {"test_runlock", "--armed-child", fd, NULL};
        char **env = parentdeath_child_env(NULL);
        pid_t b;
        if (!env || posix_spawn(&b, "/proc/self/exe", NULL, NULL, argv, env) != 0) _exit(1);
        parentdeath_child_env_free(env);
        child_wait_forever();
    }
    close(ready[1]);
    long msg[2] = {0, 0};
    int rc = read_within(ready[0], msg, sizeof msg);
    close(ready[0]);
    int status = 0;
    kill(a, SIGKILL);
    assert_int_equal(wait_within(a, &status), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(msg[1], 1);
    rc = wait_within((pid_t)msg[0], &status);
    if (rc != 0) kill((pid_t)msg[0], SIGKILL), waitpid((pid_t)msg[0], NULL, 0);
    become_subreaper(0);
    assert_int_equal(rc, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
}

static int pdeathsig(void) {
    int sig = -1;
    assert_int_equal(prctl(PR_GET_PDEATHSIG, &sig), 0);
    return sig;
}

static void test_arm_from_env(void **state) {
    (void)state;
    CkError err = {{0}};
    unsetenv(PARENTDEATH_ENV);
    assert_int_equal(parentdeath_arm_from_env(&err), 0); /* started by a user: nothing */
    assert_int_equal(pdeathsig(), 0);
    setenv(PARENTDEATH_ENV, "12x", 1);
    assert_int_equal(parentdeath_arm_from_env(&err), -1);
    assert_string_equal(err.msg, "CUTKIT_PARENT_PID=12x is not a process id");
    assert_null(getenv(PARENTDEATH_ENV));
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid()); /* not our parent */
    setenv(PARENTDEATH_ENV, pid, 1);
    assert_int_equal(parentdeath_arm_from_env(&err), -1);
    assert_non_null(strstr(err.msg, "has already exited"));
    assert_int_equal(pdeathsig(), 0);
    snprintf(pid, sizeof pid, "%ld", (long)getppid());
    setenv(PARENTDEATH_ENV, pid, 1);
    assert_int_equal(parentdeath_arm_from_env(&err), 0);
    assert_int_equal(pdeathsig(), SIGTERM);
    assert_null(getenv(PARENTDEATH_ENV)); /* our own children will not see it */
    assert_int_equal(prctl(PR_SET_PDEATHSIG, 0), 0);
}

static void test_child_env(void **state) {
    (void)state;
    CkError err = {{0}};
    setenv(PARENTDEATH_ENV, "999", 1); /* inherited from our own spawner */
    setenv("CK_TEST_KEEP", "yes", 1);
    char **env = parentdeath_child_env(&err);
    assert_non_null(env);
    char ours[64];
    snprintf(ours, sizeof ours, "%s=%ld", PARENTDEATH_ENV, (long)getpid());
    int n_ours = 0, n_pid = 0, kept = 0, n = 0, n_environ = 0;
    for (; env[n]; n++) {
        n_ours += !strcmp(env[n], ours);
        n_pid += !strncmp(env[n], PARENTDEATH_ENV "=", strlen(PARENTDEATH_ENV) + 1);
        kept += !strcmp(env[n], "CK_TEST_KEEP=yes");
    }
    while (environ[n_environ]) n_environ++;
    assert_int_equal(n_ours, 1);
    assert_int_equal(n_pid, 1);
    assert_int_equal(kept, 1);
    assert_int_equal(n, n_environ);                      /* one replaced, none lost */
    assert_string_equal(getenv(PARENTDEATH_ENV), "999"); /* ours untouched */
    parentdeath_child_env_free(env);
    parentdeath_child_env_free(NULL);
    unsetenv(PARENTDEATH_ENV);
    unsetenv("CK_TEST_KEEP");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--armed-child")) return armed_child(atoi(argv[2]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_refused_then_stale_taken_over),
        cmocka_unit_test(test_two_dirs_release_reacquire),
        cmocka_unit_test(test_bad_dirs),
        cmocka_unit_test(test_file_locks),
        cmocka_unit_test(test_child_dies_with_parent),
        cmocka_unit_test(test_parent_gone_before_arming),
        cmocka_unit_test(test_spawned_command_dies_with_parent),
        cmocka_unit_test(test_arm_from_env),
        cmocka_unit_test(test_child_env),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
