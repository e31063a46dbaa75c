/* Event kind names. */
#include "edr/event.h"

const char *edr_event_kind_name(Edr__V1__Event__BodyCase k)
{
    switch (k) {
    case EDR__V1__EVENT__BODY_PROCESS_START:
        return "process_start";
    case EDR__V1__EVENT__BODY_PROCESS_FORK:
        return "process_fork";
    case EDR__V1__EVENT__BODY_PROCESS_EXIT:
        return "process_exit";
    case EDR__V1__EVENT__BODY_PROCESS_ACCESS:
        return "process_access";
    case EDR__V1__EVENT__BODY_FILE_CREATE:
        return "file_create";
    case EDR__V1__EVENT__BODY_FILE_WRITE:
        return "file_write";
    case EDR__V1__EVENT__BODY_FILE_RENAME:
        return "file_rename";
    case EDR__V1__EVENT__BODY_FILE_DELETE:
        return "file_delete";
    case EDR__V1__EVENT__BODY_FILE_ATTR:
        return "file_attr";
    case EDR__V1__EVENT__BODY_FILE_EXEC:
        return "file_exec";
    case EDR__V1__EVENT__BODY_NETWORK:
        return "network";
    case EDR__V1__EVENT__BODY_DNS_QUERY:
        return "dns_query";
    case EDR__V1__EVENT__BODY_SENSOR_HEALTH:
        return "sensor_health";
    case EDR__V1__EVENT__BODY_BPF_LOAD:
        return "bpf_load";
    case EDR__V1__EVENT__BODY_BPF_ATTACH:
        return "bpf_attach";
    case EDR__V1__EVENT__BODY_BPF_DETACH:
        return "bpf_detach";
    case EDR__V1__EVENT__BODY_PROCESS_INVENTORY:
        return "process_inventory";
    default:
        return "none";
    }
}
