/* parentdeath.c — see parentdeath.h. */
#include "util/parentdeath.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

int parentdeath_arm(pid_t expected_parent, CkError *err) {
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        return ck_fail(err, "cannot ask to be stopped with the parent process: %s",
                       strerror(errno));
    /* Armed from here on; a parent that died before this point has left us with another
     * parent (init or a subreaper), and no signal will come. */
    if (getppid() != expected_parent) {
        prctl(PR_SET_PDEATHSIG, 0);
        return ck_fail(err, "the parent process %ld has already exited", (long)expected_parent);
    }
#else
    (void)expected_parent;
    (void)err;
#endif
    return 0;
}

int parentdeath_arm_from_env(CkError *err) {
    const char *value = getenv(PARENTDEATH_ENV);
    if (!value || !*value) return 0;
    char *end;
    errno = 0;
    long pid = strtol(value, &end, 10);
    int valid = errno == 0 && end != value && *end == '\0' && pid > 0 && pid <= INT_MAX;
    if (!valid) ck_fail(err, "%s=%.40s is not a process id", PARENTDEATH_ENV, value);
    unsetenv(PARENTDEATH_ENV); /* value is invalid from here on */
    return valid ? parentdeath_arm((pid_t)pid, err) : -1;
}

char **parentdeath_child_env(CkError *err) {
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **env = malloc((n + 2) * sizeof *env);
    const size_t size = sizeof PARENTDEATH_ENV "=" + 24; /* a long's digits fit in 24 */
    char *entry = malloc(size);
    if (!env || !entry) {
        free(env);
        free(entry);
        ck_fail(err, "out of memory");
        return NULL;
    }
    snprintf(entry, size, "%s=%ld", PARENTDEATH_ENV, (long)getpid());
    /* ours first, so that _free knows which string it owns */
    env[0] = entry;
    size_t k = 1;
    const size_t prefix = strlen(PARENTDEATH_ENV "=");
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], PARENTDEATH_ENV "=", prefix) != 0) env[k++] = environ[i];
    env[k] = NULL;
    return env;
}

void parentdeath_child_env_free(char **env) {
    if (!env) return;
    free(env[0]);
    free(env);
}
