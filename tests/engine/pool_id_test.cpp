// The five pools and the names users call them by.

#include <gtest/gtest.h>

#include "pool_id.hpp"

namespace {

using kvp::PoolId;

TEST(PoolId, NamesAndFiles) {
    EXPECT_EQ(kvp::pool_name(PoolId::external), "external");
    EXPECT_EQ(kvp::pool_name(PoolId::guest), "guest");
    EXPECT_EQ(kvp::pool_name(PoolId::automatic), "auto");
    EXPECT_EQ(kvp::pool_name(PoolId::parameter), "parameter");
    for (int n = 0; n < 5; ++n) {
        EXPECT_EQ(kvp::pool_file_name(kvp::kAllPools.at(n)), ".kvp_pool_" + std::to_string(n));
        EXPECT_EQ(kvp::pool_number(kvp::kAllPools.at(n)), n);
    }
}

TEST(PoolId, ParseNamesAndNumbers) {
    EXPECT_EQ(kvp::parse_pool("external"), PoolId::external);
    EXPECT_EQ(kvp::parse_pool("guest"), PoolId::guest);
    EXPECT_EQ(kvp::parse_pool("auto"), PoolId::automatic);
    EXPECT_EQ(kvp::parse_pool("parameter"), PoolId::parameter);
    for (int n = 0; n < 5; ++n) {
        EXPECT_EQ(kvp::parse_pool(std::to_string(n)), kvp::kAllPools.at(n));
    }
    for (const char* bad : {"", "5", "-1", "10", "guests", "Guest", " guest", "1x", "pool1"}) {
        EXPECT_EQ(kvp::parse_pool(bad), std::nullopt) << bad;
    }
}

TEST(PoolId, ShownPoolsAreTheFourDirectoriesInOrder) {
    ASSERT_EQ(kvp::kShownPools.size(), 4u);
    EXPECT_EQ(kvp::kShownPools[0], PoolId::external);
    EXPECT_EQ(kvp::kShownPools[1], PoolId::guest);
    EXPECT_EQ(kvp::kShownPools[2], PoolId::automatic);
    EXPECT_EQ(kvp::kShownPools[3], PoolId::parameter);
}

}  // namespace
