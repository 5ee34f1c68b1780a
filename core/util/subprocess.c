/* subprocess.c — fork/exec with three pipes, one poll loop feeding stdin and draining stdout
 * and stderr (so a command that writes a lot before reading cannot deadlock us), and a
 * deadline after which the command's process group is killed. */
#include "util/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/strbuf.h"
#include "util/timer.h"

#define DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
#define TAIL_KEEP          240 /* stderr bytes quoted in messages */

/* Keeps only the last TAIL_KEEP bytes of stderr: messages quote the end, where the error is. */
static void tail_append(char *tail, size_t *len, const char *src, size_t n) {
    if (n >= TAIL_KEEP) {
        memcpy(tail, src + n - TAIL_KEEP, TAIL_KEEP);
        *len = TAIL_KEEP;
        return;
    }
    if (*len + n > TAIL_KEEP) {
        size_t drop = *len + n - TAIL_KEEP;
        memmove(tail, tail + drop, *len - drop);
        *len -= drop;
    }
    memcpy(tail + *len, src, n);
    *len += n;
}

/* The stderr tail as one line: newlines become " | ", surrounding whitespace trimmed. */
static void tail_line(const char *tail, size_t len, char *line, size_t cap) {
    size_t start = 0, w = 0;
    while (start < len && (tail[start] == '\n' || tail[start] == ' ' || tail[start] == '\r'))
        start++;
    while (len > start && (tail[len - 1] == '\n' || tail[len - 1] == ' ' || tail[len - 1] == '\r'))
        len--;
    for (size_t i = start; i < len && w + 4 < cap; i++) {
        if (tail[i] == '\n') {
            memcpy(line + w, " | ", 3);
            w += 3;
        } else if (tail[i] != '\r') {
            line[w++] = tail[i];
        }
    }
    line[w] = '\0';
}

static void describe(char *const argv[], char *name, size_t cap) {
    /* the shell wrapper is implied: show the user's command line */
    int first = (argv[0] && argv[1] && argv[2] && strcmp(argv[0], "/bin/sh") == 0 &&
                 strcmp(argv[1], "-c") == 0)
                    ? 2
                    : 0;
    size_t w = 0;
    name[0] = '\0';
    for (int i = first; argv[i] && w + 1 < cap; i++) {
        int n = snprintf(name + w, cap - w, "%s%s", w ? " " : "", argv[i]);
        if (n < 0) break;
        w += (size_t)n < cap - w ? (size_t)n : cap - w - 1;
    }
    if (w + 1 >= cap && cap > 4) memcpy(name + cap - 4, "...", 4);
}

static void set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Waits for pid until the deadline (< 0: forever); returns 1 when it exited (status in
 * *status), 0 when the deadline passed first. */
static int wait_until(pid_t pid, double deadline, int *status) {
    for (;;) {
        pid_t r = waitpid(pid, status, deadline < 0 ? 0 : WNOHANG);
        if (r == pid) return 1;
        if (r < 0 && errno != EINTR) {
            *status = 0;
            return 1; /* already reaped: nothing left to wait for */
        }
        if (r == 0) {
            if (timer_seconds() >= deadline) return 0;
            struct timespec ts = {0, 2000000}; /* 2 ms */
            nanosleep(&ts, NULL);
        }
    }
}

static void kill_group(pid_t pid) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL); /* in case the child had not yet made its own group */
}

int subprocess_run(char *const argv[], const char *input, size_t input_len,
                   const SubprocessOptions *opt, char **out, size_t *out_len, CkError *err) {
    const double timeout = opt ? opt->timeout_seconds : 0;
    const size_t max_output = opt && opt->max_output ? opt->max_output : DEFAULT_MAX_OUTPUT;
    char name[160];
    describe(argv, name, sizeof name);
    *out = NULL;
    if (out_len) *out_len = 0;
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
        pipe2(err_pipe, O_CLOEXEC) != 0) {
        int e = errno;
        close_fd(&in_pipe[0]), close_fd(&in_pipe[1]), close_fd(&out_pipe[0]);
        close_fd(&out_pipe[1]), close_fd(&err_pipe[0]), close_fd(&err_pipe[1]);
        return ck_fail(err, "command '%s': cannot create pipes: %s", name, strerror(e));
    }
    /* Writing to a command that exits without reading its stdin raises SIGPIPE: block it in
     * this thread (EPIPE instead) and consume a pending one before returning. */
    sigset_t pipe_set, old_mask;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    const int pipe_was_blocked = sigismember(&old_mask, SIGPIPE);

    const double start = timer_seconds();
    const double deadline = timeout > 0 ? start + timeout : -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* child: only async-signal-safe calls until exec */
        setpgid(0, 0);
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        execvp(argv[0], argv);
        static const char msg[] = "cannot execute the command\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    int rc = -1;
    StrBuf obuf = {0};
    char tail[TAIL_KEEP];
    size_t tail_len = 0;
    if (pid < 0) {
        ck_fail(err, "command '%s': cannot fork: %s", name, strerror(errno));
        close_fd(&in_pipe[0]), close_fd(&in_pipe[1]), close_fd(&out_pipe[0]);
        close_fd(&out_pipe[1]), close_fd(&err_pipe[0]), close_fd(&err_pipe[1]);
        goto restore;
    }
    setpgid(pid, pid);
    close_fd(&in_pipe[0]);
    close_fd(&out_pipe[1]);
    close_fd(&err_pipe[1]);
    int fd_in = in_pipe[1], fd_out = out_pipe[0], fd_err = err_pipe[0];
    set_nonblocking(fd_in);
    set_nonblocking(fd_out);
    set_nonblocking(fd_err);
    size_t written = 0;
    if (input_len == 0) close_fd(&fd_in);
    enum { RUNNING, TIMED_OUT, TOO_LONG, NO_MEMORY } why = RUNNING;
    while (fd_out >= 0 || fd_err >= 0) {
        struct pollfd p[3];
        int np = 0, i_in = -1, i_out = -1, i_err = -1;
        if (fd_in >= 0) i_in = np, p[np++] = (struct pollfd){fd_in, POLLOUT, 0};
        if (fd_out >= 0) i_out = np, p[np++] = (struct pollfd){fd_out, POLLIN, 0};
        if (fd_err >= 0) i_err = np, p[np++] = (struct pollfd){fd_err, POLLIN, 0};
        int wait_ms = -1;
        if (deadline >= 0) {
            double left = deadline - timer_seconds();
            if (left <= 0) {
                why = TIMED_OUT;
                break;
            }
            wait_ms = (int)(left * 1000) + 1;
        }
        int r = poll(p, (nfds_t)np, wait_ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (i_in >= 0 && p[i_in].revents) {
            ssize_t w = write(fd_in, input + written, input_len - written);
            if (w > 0) written += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input_len ||
                (p[i_in].revents & (POLLERR | POLLHUP)))
                close_fd(&fd_in); /* done, or the command stopped reading: not an error */
        }
        char chunk[65536];
        if (i_out >= 0 && p[i_out].revents) {
            ssize_t n = read(fd_out, chunk, sizeof chunk);
            if (n > 0) {
                if (obuf.n + (size_t)n > max_output) {
                    why = TOO_LONG;
                    break;
                }
                if (strbuf_put(&obuf, chunk, (size_t)n) != 0) {
                    why = NO_MEMORY;
                    break;
                }
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_fd(&fd_out);
            }
        }
        if (i_err >= 0 && p[i_err].revents) {
            ssize_t n = read(fd_err, chunk, sizeof chunk);
            if (n > 0)
                tail_append(tail, &tail_len, chunk, (size_t)n);
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                close_fd(&fd_err);
        }
    }
    close_fd(&fd_in);
    close_fd(&fd_out);
    close_fd(&fd_err);
    int status = 0;
    if (why == RUNNING && !wait_until(pid, deadline, &status)) why = TIMED_OUT;
    if (why != RUNNING) {
        kill_group(pid);
        wait_until(pid, -1, &status);
    }
    char line[TAIL_KEEP * 3 + 8];
    tail_line(tail, tail_len, line, sizeof line);
    const char *sep = line[0] ? "; stderr: " : "; no stderr output";
    if (why == TIMED_OUT)
        ck_fail(err, "command '%s' timed out after %g s and was killed%s%s", name, timeout, sep,
                line);
    else if (why == TOO_LONG)
        ck_fail(err, "command '%s' printed more than %zu bytes", name, max_output);
    else if (why == NO_MEMORY)
        ck_fail(err, "command '%s': out of memory reading its output", name);
    else if (WIFSIGNALED(status))
        ck_fail(err, "command '%s' was killed by signal %d%s%s", name, WTERMSIG(status), sep, line);
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        ck_fail(err, "command '%s' exited with status %d%s%s", name, WEXITSTATUS(status), sep,
                line);
    else if (!obuf.p && strbuf_put(&obuf, "", 0) != 0)
        ck_fail(err, "out of memory");
    else
        rc = 0;
    if (rc == 0) {
        *out = obuf.p;
        if (out_len) *out_len = obuf.n;
    } else {
        free(obuf.p);
    }
restore:
    if (!pipe_was_blocked) {
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}

int subprocess_run_shell(const char *command, const char *input, size_t input_len,
                         const SubprocessOptions *opt, char **out, size_t *out_len, CkError *err) {
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    return subprocess_run(argv, input, input_len, opt, out, out_len, err);
}

extern char **environ;

int subprocess_call(const char *program, char *const argv[], char *const envp[], CkError *err) {
    pid_t pid;
    int rc = posix_spawn(&pid, program, NULL, NULL, argv, envp ? envp : environ);
    if (rc != 0) return ck_fail(err, "cannot start %s: %s", program, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return ck_fail(err, "waiting for %s: %s", program, strerror(errno));
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return ck_fail(err, "%s ended in an unknown way (status %d)", program, status);
}
