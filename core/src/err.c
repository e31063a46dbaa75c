/* Messages and names for edr_err_t. */
#include "edr/err.h"

const char *edr_strerror(int err)
{
    switch (err) {
#define EDR__ERR_MSG(name, val, msg)                                                               \
    case val:                                                                                      \
        return msg;
        EDR_ERRNO_MAP(EDR__ERR_MSG)
#undef EDR__ERR_MSG
    }
    return "unknown error";
}

const char *edr_err_name(int err)
{
    switch (err) {
#define EDR__ERR_NAME(name, val, msg)                                                              \
    case val:                                                                                      \
        return #name;
        EDR_ERRNO_MAP(EDR__ERR_NAME)
#undef EDR__ERR_NAME
    }
    return "UNKNOWN";
}
