import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassStorage
@testable import CompassTestSupport

/// Which tenants each Meta user connected, in a thousand shared folders; stores written before
/// keep entries in a folder per user (`meta/meta-user/<user>/<tenant>`), which Meta's callbacks
/// and a disconnect still read, and a tenant that connects again moves.
@Suite struct MetaUserIndexTests {
    /// Puts the tenants' entries where stores written before this index had them.
    static func moveToEarlierLayout(_ world: World, _ tenants: [String], user: String = SandboxData.defaultUserId) throws {
        for tenant in tenants {
            #expect(try world.store.delete(MetaUserIndex.key(user, tenant), ifVersion: nil))
            try world.store.put(MetaUserIndex.earlierKey(user, tenant), Array("{}".utf8), ttl: nil)
        }
    }

    static func entries(_ world: World, _ prefix: String) throws -> [String] {
        try world.store.list(prefix: prefix, after: nil, limit: 100).entries.map(\.key)
    }

    @Test func entriesShareAFolderByTheUsersLastThreeDigits() throws {
        #expect(MetaUserIndex.key("10000000000123", "tenant_a") == "meta/meta-users/123/10000000000123-tenant_a")
        let world = World()
        world.connectTenant("a1")
        world.connectTenant("a2", user: "10000000000099")
        let user = SandboxData.defaultUserId
        #expect(
            try Self.entries(world, MetaUserIndex.prefix).sorted()
                == [MetaUserIndex.key(user, "a1"), MetaUserIndex.key("10000000000099", "a2")].sorted())
        #expect(try Self.entries(world, MetaUserIndex.earlierPrefix).isEmpty)
    }

    /// User ids that share their last three digits share a folder, and one may begin another
    /// (`123`, `123123`): none gets another's entries.
    @Test func oneUsersEntriesAreNeverAnothers() throws {
        let index = MetaUserIndex(store: World().store)
        try index.add("1123", "t1")
        try index.add("123", "t2")
        try index.add("123123", "t3")
        try index.add("123", "t4")
        try index.add("12", "3-t5")
        #expect(try index.tenants(of: "123") == ["t2", "t4"])
        #expect(try index.tenants(of: "1123") == ["t1"])
        #expect(try index.tenants(of: "123123") == ["t3"])
        #expect(try index.tenants(of: "12") == ["3-t5"])
        #expect(try index.hasTenant(of: "1123", besides: "t1") == false)
        #expect(try index.hasTenant(of: "123123", besides: "t3") == false)
        #expect(try index.hasTenant(of: "123", besides: "t2"))
    }

    @Test func metasCallbacksFindTenantsOfEitherLayout() throws {
        let world = World()
        world.connectTenant("a1")
        world.connectTenant("a2")
        try Self.moveToEarlierLayout(world, ["a1"])
        #expect(try MetaUserIndex(store: world.store).tenants(of: SandboxData.defaultUserId) == ["a1", "a2"])
        let response = world.metaCallback("/api/connect/meta/deauthorize", world.signedRequest(user: SandboxData.defaultUserId))
        #expect(response.status == 200)
        for tenant in ["a1", "a2"] {
            #expect(world.integration(tenant)?.status == .disconnected)
            #expect(world.credential(tenant) == nil)
        }
        #expect(try Self.entries(world, MetaUserIndex.prefix).isEmpty)
        #expect(try Self.entries(world, MetaUserIndex.earlierPrefix).isEmpty)
    }

    @Test func aGrantSharedThroughAnEarlierEntryIsNotRevoked() throws {
        let world = World()
        world.connectTenant("tenant_a")
        world.connectTenant("tenant_b")
        try Self.moveToEarlierLayout(world, ["tenant_b"])
        let response = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "tenant_a"))
        #expect(response.text == #"{"disconnected":true,"revokeSkipped":"grant_shared_with_another_tenant","revokedAtMeta":false}"#)
        // tenant_b's own earlier entry is no other tenant: its disconnect revokes, and takes it.
        let last = world.run(DisconnectHandler.self, world.request("POST", "/api/connect/meta/disconnect", tenant: "tenant_b"))
        #expect(last.text == #"{"disconnected":true,"revokedAtMeta":true}"#)
        #expect(try Self.entries(world, MetaUserIndex.earlierPrefix).isEmpty)
    }

    @Test func connectingAgainMovesAnEarlierEntry() throws {
        let world = World()
        world.connectTenant("tenant_a")
        try Self.moveToEarlierLayout(world, ["tenant_a"])
        world.connectTenant("tenant_a")
        #expect(try Self.entries(world, MetaUserIndex.prefix) == [MetaUserIndex.key(SandboxData.defaultUserId, "tenant_a")])
        #expect(try Self.entries(world, MetaUserIndex.earlierPrefix).isEmpty)
    }
}
