#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "warrant";
static int log_max = LOG_INFO;

void
log_init(const char *ident, int max_level)
{
	log_ident = ident;
	log_max = max_level;
}

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	struct timespec ts;
	struct tm tm;
	char when[32] = "";

	if (level > log_max) {
		return;
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &tm) != NULL) {
		(void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	va_start(ap, fmt);
	/* A truncated line is still worth printing. */
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	(void)fprintf(stderr, "%s %s[%ld]: %s: %s\n", when, log_ident, (long)getpid(),
	    level_name(level), line);
}
