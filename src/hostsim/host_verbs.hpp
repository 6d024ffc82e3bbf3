#pragma once
// The host's verbs (`kvp-host add|modify|remove|get|list|status|daemon`): each builds the
// messages a Hyper-V host would and sends them through `kvp-host serve`.
//
// Exit status of every verb: 0 done; 1 the host's request failed (not found, HV_E_FAIL,
// the driver's timeout, no daemon registered); 2 bad use or no server: nothing was sent.

#include <iosfwd>
#include <string>

namespace hostsim {

struct VerbContext {
    std::string socket_path;
    bool json = false;
    double timeout_s = 0;  // 0: the server's (the driver's) timeout
    // Lets add/modify/remove reach pools 1, 2 and 4, which a Hyper-V host never changes
    // (experiments: the daemon then rewrites those pool files as it does pool 0).
    bool any_pool = false;
    std::ostream& out;
    std::ostream& err;
};

int verb_set(const VerbContext& c, const std::string& verb, const std::string& pool,
             const std::string& key, const std::string& value);
int verb_remove(const VerbContext& c, const std::string& pool, const std::string& key);
int verb_get(const VerbContext& c, const std::string& pool, const std::string& key, bool single);
int verb_list(const VerbContext& c, const std::string& pool);
int verb_status(const VerbContext& c, double wait_s);
int verb_daemon(const VerbContext& c, const std::string& action);

}  // namespace hostsim
