import Foundation
import Synchronization
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

/// Security review finding 7: the outbox kept IP addresses, user agents, page URLs and custom
/// data in plaintext. Queued events are sealed with the credentials key, bound to their tenant
/// and record key, and rotated with it.
@Suite struct OutboxEncryptionTests {
    static let secrets = [
        "203.0.113.77", "LeakyBrowser/9.1", "https://shop.example/thanks?email=jane.outbox@example.com",
        "jane.outbox@example.com", "order-secret-991",
    ]

    static func event(_ world: World, id: String = "o-1") -> String {
        #"{"eventName":"Purchase","eventTime":\#(world.clock.now.unixSeconds - 10),"actionSource":"website","eventId":"\#(id)","eventSourceUrl":"\#(secrets[2])","userData":{"em":"\#(secrets[3])","client_ip_address":"\#(secrets[0])","client_user_agent":"\#(secrets[1])"},"customData":{"value":42,"currency":"USD","order_id":"\#(secrets[4])"}}"#
    }

    func queued(_ world: World) throws -> [(key: String, value: Versioned)] {
        try world.store.list(prefix: "meta/outbox/tenant_a/", after: nil, limit: 10).entries
    }

    @Test func aQueuedEventIsStoredSealedAndDeliveredWhole() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 1)
        #expect(world.send(Self.event(world)).status == 202)
        let stored = try #require(try queued(world).first)
        let text = String(decoding: stored.value.value, as: UTF8.self)
        for secret in Self.secrets { #expect(!text.contains(secret), "stored in the clear: \(secret)") }
        #expect(!text.contains("o-1"), "the event id is sealed too")
        let entry = try JSON.decode(OutboxEntry.self, from: stored.value.value)
        #expect(entry.sealedEvent.keyId == world.config.platform.credentialKeys!.current.id)
        // The drain opens it and Meta gets the event as it was.
        world.clock.advance(3600)
        _ = try EventPipeline(dependencies: world.dependencies, tenant: "tenant_a").drain()
        let delivered = try #require(world.delivered().first)
        #expect(delivered["event"]?["event_id"]?.string == "o-1")
        #expect(delivered["event"]?["user_data"]?["client_ip_address"]?.string == Self.secrets[0])
        #expect(try queued(world).isEmpty)
    }

    @Test func eachSealTakesAFreshNonceFromTheRandomSource() throws {
        let keys = CredentialKeys(current: Crypto.randomBytes(32))
        let event = NormalizedEvent(
            eventId: "n-1", eventName: "Lead", eventTime: 1, actionSource: "website",
            payload: .object(["event_id": "n-1"]), matchKeys: [], warnings: [])
        let secure = CredentialCipher(keys: keys, random: SecureRandom())
        let first = OutboxEntry(event, tenantId: "t", now: Date(), error: nil, cipher: secure)
        let second = OutboxEntry(event, tenantId: "t", now: Date(), error: nil, cipher: secure)
        #expect(first.sealedEvent.nonce != second.sealedEvent.nonce)
        #expect(first.sealedEvent.ciphertext != second.sealedEvent.ciphertext)
        let fixed = OutboxEntry(
            event, tenantId: "t", now: Date(), error: nil, cipher: CredentialCipher(keys: keys, random: FixedRandom(byte: 0xA5)))
        #expect(fixed.sealedEvent.nonce == Data([UInt8](repeating: 0xA5, count: 12)).base64EncodedString())
        #expect(try fixed.event(tenant: "t", dedupKey: event.dedupKey, cipher: secure).eventId == "n-1")
    }

    @Test func aRecordMovedToAnotherTenantOrEventDoesNotOpen() throws {
        let keys = CredentialKeys(current: Crypto.randomBytes(32))
        let cipher = CredentialCipher(keys: keys, random: SecureRandom())
        let event = NormalizedEvent(
            eventId: "m-1", eventName: "Lead", eventTime: 1, actionSource: "website",
            payload: .object(["event_id": "m-1"]), matchKeys: [], warnings: [])
        let entry = OutboxEntry(event, tenantId: "owner", now: Date(), error: nil, cipher: cipher)
        #expect(throws: CredentialCipher.Failure.unreadable) { try entry.event(tenant: "thief", dedupKey: event.dedupKey, cipher: cipher) }
        let other = NormalizedEvent(
            eventId: "m-2", eventName: "Lead", eventTime: 1, actionSource: "website",
            payload: .object(["event_id": "m-2"]), matchKeys: [], warnings: [])
        #expect(throws: CredentialCipher.Failure.unreadable) { try entry.event(tenant: "owner", dedupKey: other.dedupKey, cipher: cipher) }
    }

    @Test func rotationSealsQueuedAndDeadEventsAgain() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 2)
        #expect(world.send(Self.event(world, id: "r-1")).status == 202)
        let oldKey = world.config.platform.credentialKeys!.current.bytes
        let newKey = Crypto.randomBytes(32)
        world.config.platform.credentialKeys = CredentialKeys(current: newKey, previous: oldKey)
        // A record among the dead letters that is not an entry at all: passed over, not counted.
        let stored = try #require(try queued(world).first)
        let dedup = String(stored.key.split(separator: "/").last!)
        try world.store.put(RecordKey.dead("tenant_a", dedup + "0"), Array("{not an entry".utf8))
        // A dead letter under the old key too.
        var dead = try JSON.decode(OutboxEntry.self, from: stored.value.value)
        dead.deadReason = "max_attempts"
        let deadEvent = NormalizedEvent(
            eventId: "r-2", eventName: "Purchase", eventTime: world.clock.now.unixSeconds, actionSource: "website",
            payload: .object(["event_id": "r-2"]), matchKeys: [], warnings: [])
        let oldCipher = CredentialCipher(keys: CredentialKeys(current: oldKey), random: SecureRandom())
        dead.sealedEvent = OutboxEntry(deadEvent, tenantId: "tenant_a", now: world.clock.now, error: nil, cipher: oldCipher).sealedEvent
        try RecordStore(store: world.store).save(dead, at: RecordKey.dead("tenant_a", deadEvent.dedupKey))

        let summary = world.refreshTokens()
        #expect(summary.eventsRotated == 2)
        #expect(summary.underPreviousKey == 0)
        world.config.platform.credentialKeys = CredentialKeys(current: newKey)
        let cipher = CredentialCipher(keys: world.config.platform.credentialKeys!, random: SecureRandom())
        let rotated = try JSON.decode(OutboxEntry.self, from: try #require(try queued(world).first).value.value)
        #expect(try rotated.event(tenant: "tenant_a", dedupKey: dedup, cipher: cipher).eventId == "r-1")
        let rotatedDead = try #require(
            try RecordStore(store: world.store).load(OutboxEntry.self, at: RecordKey.dead("tenant_a", deadEvent.dedupKey))?.0)
        #expect(try rotatedDead.event(tenant: "tenant_a", dedupKey: deadEvent.dedupKey, cipher: cipher).eventId == "r-2")
    }

    @Test func anEventThatCannotBeRotatedIsCounted() throws {
        let world = World()
        world.readyTenant()
        world.queueFault(.serverError, path: "2000101/events", count: 2)
        #expect(world.send(Self.event(world, id: "u-1")).status == 202)
        // Sealed under a key that is no longer configured at all: it cannot be opened to rotate.
        world.config.platform.credentialKeys = CredentialKeys(current: Crypto.randomBytes(32), previous: Crypto.randomBytes(32))
        #expect(world.refreshTokens().underPreviousKey >= 1)
    }
}
