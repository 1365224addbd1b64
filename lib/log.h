/* log: one line per event on standard error, for components only.
 * Library modules never log; they return a code and the caller says it once. */
#ifndef WARRANT_LOG_H
#define WARRANT_LOG_H

#include <syslog.h>

void log_init(const char *ident, int max_level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
