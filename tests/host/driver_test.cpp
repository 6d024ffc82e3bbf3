// The KVP driver's text conversions and message handling as kvp-host reproduces them: no
// daemon, no FUSE, no root.
#include <gtest/gtest.h>

#include "driver.hpp"
#include "driver_text.hpp"
#include "kvp_message.hpp"

namespace hostsim {
namespace {

Utf16 u16(const std::u16string& s) {
    return {s.begin(), s.end()};
}

std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        out += s;
    }
    return out;
}

TEST(DriverText, HostToDaemonCutsAtTheByteLimitAndSkipsWhatNoLongerFits) {
    EXPECT_EQ(driver_utf16_to_utf8(u16(u"Grüße €"), 100, 2047), "Grüße €");
    // 1,023 € of 3 bytes each: 682 fit in 2,047 bytes.
    const Utf16 euros(1023, 0x20AC);
    EXPECT_EQ(driver_utf16_to_utf8(euros, 2046, 2047), repeat("€", 682));
    // One byte left: the next € is skipped and the "a" after it still fits.
    Utf16 skip(682, 0x20AC);
    skip.push_back(0x20AC);
    skip.push_back('a');
    EXPECT_EQ(driver_utf16_to_utf8(skip, 2046, 2047), repeat("€", 682) + "a");
    // Stops at a 0 unit and at the unit count it is given.
    EXPECT_EQ(driver_utf16_to_utf8({'a', 'b', 0, 'c', 'd'}, 10, 10), "ab");
    EXPECT_EQ(driver_utf16_to_utf8(u16(u"abcd"), 2, 10), "ab");
}

TEST(DriverText, UnpairedSurrogatesAreDroppedTowardsTheDaemon) {
    EXPECT_EQ(driver_utf16_to_utf8({'a', 0xD800, 'b'}, 10, 100), "ab");
    EXPECT_EQ(driver_utf16_to_utf8({'a', 0xDC00, 'b'}, 10, 100), "ab");
    EXPECT_EQ(driver_utf16_to_utf8({0xD834, 0xDD1E}, 10, 100), "𝄞");
}

TEST(DriverText, DaemonToHostCutsAtUnitsAndFailsOnInvalidUtf8) {
    EXPECT_EQ(driver_utf8_to_utf16("Grüße", 1022), u16(u"Grüße"));
    EXPECT_EQ(driver_utf8_to_utf16(repeat("a", 300), 254)->size(), 254U);
    // A surrogate pair is not split: with one unit left it is left out.
    EXPECT_EQ(driver_utf8_to_utf16(repeat("a", 1021) + "𝄞", 1022)->size(), 1021U);
    EXPECT_FALSE(driver_utf8_to_utf16("a\xff", 10));
    EXPECT_FALSE(driver_utf8_to_utf16("\xc0\x80", 10));      // overlong
    EXPECT_FALSE(driver_utf8_to_utf16("\xed\xa0\x80", 10));  // a surrogate
    // Past the cut nothing is looked at.
    EXPECT_EQ(driver_utf8_to_utf16("ab\xff", 2), u16(u"ab"));
}

TEST(DriverText, CommandLineRefusesSurrogatesAndNonUtf8) {
    std::string why;
    EXPECT_EQ(command_line_to_utf16("a𝄞", &why), (Utf16{'a', 0xD834, 0xDD1E}));
    EXPECT_FALSE(command_line_to_utf16("a\xed\xa0\x80", &why));
    EXPECT_NE(why.find("U+D800"), std::string::npos) << why;
    EXPECT_FALSE(command_line_to_utf16("\xff", &why));
    EXPECT_NE(why.find("not UTF-8"), std::string::npos) << why;
}

TEST(Driver, SetIsConvertedAndEnumerationAnswersInUtf16) {
    const KvpMessage host = host_set(0, u16(u"Schlüssel"), u16(u"Wert"));
    const KvpMessage daemon = driver_to_daemon(host);
    EXPECT_EQ(daemon.operation(), KVP_OP_SET);
    EXPECT_EQ(daemon.c_string(offset::kSetKey), "Schlüssel");
    EXPECT_EQ(daemon.u32(offset::kSetKeySize), 11U);  // bytes and the NUL
    EXPECT_EQ(daemon.c_string(offset::kSetValue), "Wert");
    EXPECT_EQ(daemon.u32(offset::kSetValueSize), 5U);

    KvpMessage request = host_enumerate(1, 7);
    EXPECT_EQ(driver_to_daemon(request).u32(offset::kEnumIndex), 7U);
    KvpMessage answer;
    answer.set_header(KVP_OP_ENUMERATE, 1);
    answer.set_bytes(offset::kEnumKey, "Status");
    answer.set_bytes(offset::kEnumValue, "Grüße");
    EXPECT_EQ(driver_respond(&request, &answer, 0), 0U);
    EXPECT_EQ(request.utf16(offset::kEnumKey, kKeyField), u16(u"Status"));
    EXPECT_EQ(request.utf16(offset::kEnumValue, kValueField), u16(u"Grüße"));
    EXPECT_EQ(request.u32(offset::kEnumValueSize), 12U);

    // Invalid UTF-8 from the daemon fails the item.
    KvpMessage bad_request = host_enumerate(1, 0);
    answer.set_bytes(offset::kEnumValue, "\xff");
    EXPECT_EQ(driver_respond(&bad_request, &answer, 0), HV_E_FAIL);
    // A daemon's error status reaches the host as it is.
    EXPECT_EQ(driver_respond(&bad_request, &answer, HV_S_CONT), HV_S_CONT);
}

TEST(Driver, RegistrationIsAnsweredWithVersion31) {
    const KvpMessage m = driver_registration(KVP_OP_REGISTER1);
    EXPECT_EQ(m.operation(), KVP_OP_REGISTER1);
    EXPECT_EQ(m.c_string(offset::kRegisterVersion), "3.1");
    EXPECT_EQ(m.bytes().size(), sizeof(struct hv_kvp_msg));
}

}  // namespace
}  // namespace hostsim
