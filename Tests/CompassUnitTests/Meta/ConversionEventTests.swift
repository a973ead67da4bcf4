import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage
@testable import CompassTestSupport

@Suite struct ConversionEventTests {
    let now = Date(timeIntervalSince1970: 1_790_000_000)

    func event(_ json: String) -> Result<NormalizedEvent, EventRejection> {
        ConversionEvent.normalize(try! JSON.decode(JSONValue.self, from: Array(json.utf8)), tenantId: "t1", now: now)
    }

    func payload(_ json: String) throws -> [String: JSONValue] {
        try #require(try event(json).get().payload.object)
    }

    @Test func buildsMetasPayloadWithHashedUserData() throws {
        let built = try payload(
            """
            {"eventName":"Purchase","eventTime":1789999900,"actionSource":"website","eventId":"order-1",
             "eventSourceUrl":"https://shop.example/thanks?fbclid=IwAR2abc","userData":{"em":["A@x.io","a@x.io ","b@x.io"],
             "ph":"+1 650 555 1212","client_user_agent":"Mozilla/5.0","client_ip_address":"203.0.113.9","fbp":"fb.1.1.2"},
             "customData":{"value":12.5,"currency":"USD","contentIds":["sku1"],"orderId":"o1","contents":[{"id":"sku1","quantity":2,"itemPrice":6.25}]}}
            """)
        #expect(built["event_name"] == .string("Purchase"))
        #expect(built["event_time"] == .int(1_789_999_900))
        #expect(built["event_id"] == .string("order-1"))
        let user = try #require(built["user_data"]?.object)
        #expect(user["em"] == .array([.string(Hex.encode(Crypto.sha256("a@x.io"))), .string(Hex.encode(Crypto.sha256("b@x.io")))]))
        #expect(user["ph"] == .string("e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"))
        #expect(user["client_user_agent"] == .string("Mozilla/5.0"))
        #expect(user["fbc"] == .string("fb.1.1789999900000.IwAR2abc"))
        let custom = try #require(built["custom_data"]?.object)
        #expect(custom["currency"] == .string("usd"))
        #expect(custom["content_ids"] == .array([.string("sku1")]))
        #expect(custom["order_id"] == .string("o1"))
        #expect(custom["contents"] == .array([.object(["id": .string("sku1"), "quantity": .int(2), "item_price": .double(6.25)])]))
    }

    @Test func keepsAGivenFbcAndLeavesOutBadValuesWithAWarning() throws {
        let result = try event(
            """
            {"eventName":"Lead","eventTime":1789999900,"actionSource":"system_generated","eventSourceUrl":"https://x.example/?fbclid=abc",
             "userData":{"fbc":"fb.1.5.given","em":"broken","client_ip_address":"999.1.1.1","external_id":"u1"}}
            """
        ).get()
        let user = try #require(result.payload["user_data"]?.object)
        #expect(user["fbc"] == .string("fb.1.5.given"))
        #expect(user["em"] == nil && user["client_ip_address"] == nil)
        #expect(result.warnings.count == 2)
        #expect(!result.warnings.joined().contains("broken"))
        #expect(result.matchKeys == ["fbc", "external_id"])
    }

    @Test func generatesTheSameEventIdForTheSameEvent() throws {
        let json = #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"}}"#
        let first = try event(json).get()
        let second = try event(json).get()
        #expect(first.eventId == second.eventId)
        #expect(first.eventId.hasPrefix("cmp_"))
        let other = ConversionEvent.normalize(try JSON.decode(JSONValue.self, from: Array(json.utf8)), tenantId: "t2", now: now)
        #expect(try other.get().eventId != first.eventId)
    }

    static let rejections: [(String, String)] = [
        (#"[]"#, "invalid_event"),
        (#"{"eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"}}"#, "missing_field"),
        (#"{"eventName":"Lead","actionSource":"email","userData":{"em":"a@b.co"}}"#, "missing_field"),
        (#"{"eventName":"Lead","eventTime":"soon","actionSource":"email","userData":{"em":"a@b.co"}}"#, "missing_field"),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"carrier_pigeon","userData":{"em":"a@b.co"}}"#, "invalid_field"),
        (#"{"eventName":"Lead","eventTime":1790000100,"actionSource":"email","userData":{"em":"a@b.co"}}"#, "event_in_future"),
        (#"{"eventName":"Lead","eventTime":1789000000,"actionSource":"email","userData":{"em":"a@b.co"}}"#, "event_too_old"),
        (#"{"eventName":"Lead","eventTime":1790000000000,"actionSource":"email","userData":{"em":"a@b.co"}}"#, "invalid_field"),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{}}"#, "no_user_data"),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"nope"}}"#, "no_user_data"),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"website","userData":{"em":"a@b.co"},"eventSourceUrl":"https://x"}"#,
            "missing_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"website","userData":{"em":"a@b.co","client_user_agent":"UA"}}"#,
            "missing_field"
        ),
        (
            #"{"eventName":"Purchase","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"value":5}}"#,
            "missing_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"value":"5"}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"value":1e308,"currency":"usd"}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"currency":"dollars"}}"#,
            "invalid_field"
        ),
        // A user_data key Meta does not know is left out (a warning), so nothing is left to match on.
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"email":"a@b.co"}}"#, "no_user_data"),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"colour":"red"}"#, "unknown_field"),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"dataProcessingOptions":{"options":["XYZ"]}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"data_processing_options":["XYZ"]}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"data_processing_options_country":1}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"data_processing_options":["LDU"],"data_processing_options_state":"CA"}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"dataProcessingOptions":{"options":["LDU"],"country":1},"data_processing_options_country":1}"#,
            "invalid_field"
        ),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co","lead_id":-5}}"#, "invalid_field"),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"content_type":"car"}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"customData":{"deliveryCategory":"drone"}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"eventSourceUrl":"android-app://com.shop/x"}"#,
            "invalid_field"
        ),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"business_messaging","userData":{"em":"a@b.co"}}"#, "missing_field"),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"business_messaging","messagingChannel":"sms","userData":{"em":"a@b.co"}}"#,
            "invalid_field"
        ),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"app","userData":{"em":"a@b.co"}}"#, "missing_field"),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"app","userData":{"em":"a@b.co"},"appData":{"advertiserTrackingEnabled":true,"applicationTrackingEnabled":1,"extinfo":["a2"]}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"app","userData":{"em":"a@b.co"},"appData":{"advertiserTrackingEnabled":"yes","applicationTrackingEnabled":1,"extinfo":["a2","","","","","","","","","","","","","","",""]}}"#,
            "invalid_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"app","userData":{"em":"a@b.co"},"appData":{"colour":1}}"#,
            "unknown_field"
        ),
        (
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"originalEventData":"Purchase"}"#,
            "invalid_field"
        ),
        (#"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co","page_id":5}}"#, "invalid_field"),
    ]

    @Test(arguments: rejections)
    func rejectsEventsMetaWouldRefuse(json: String, code: String) {
        guard case .failure(let rejection) = event(json) else {
            Issue.record("accepted: \(json)")
            return
        }
        #expect(rejection.code == code)
        #expect(!rejection.message.contains("a@b.co"))
    }

    @Test func physicalStoreEventsHaveSixtyTwoDays() throws {
        let old = now.unixSeconds - 30 * 86_400
        #expect(throws: Never.self) {
            try event(
                #"{"eventName":"Purchase","eventTime":\#(old),"actionSource":"physical_store","userData":{"ph":"16505551212"},"customData":{"value":1,"currency":"EUR"}}"#
            ).get()
        }
    }

    /// Meta's own shape is taken as well as the one object: the same three fields go to Meta.
    @Test func dataProcessingOptionsInMetasShape() throws {
        let built = try payload(
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"data_processing_options":["LDU"],"data_processing_options_country":1,"data_processing_options_state":1000}"#
        )
        #expect(built["data_processing_options"] == .array([.string("LDU")]))
        #expect(built["data_processing_options_country"] == .int(1))
        #expect(built["data_processing_options_state"] == .int(1000))
        let off = try payload(
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"dataProcessingOptions":[]}"#)
        #expect(off["data_processing_options"] == .array([]) && off["data_processing_options_country"] == nil)
    }

    /// A rejected event lists every problem it has, each under its field, not only the first.
    @Test func aRejectedEventListsEveryProblemWithItsField() throws {
        guard
            case .failure(let rejection) = event(
                #"{"eventName":"","eventTime":1790000000000,"actionSource":"website","colour":"red","userData":{"em":"a@b.co"},"customData":{"value":"5"},"eventSourceUrl":"ftp://x","messagingChannel":"sms"}"#
            )
        else {
            Issue.record("accepted")
            return
        }
        #expect(
            rejection.problems.map(\.field) == [
                "colour", "eventName", "eventTime", "eventSourceUrl", "userData", "customData", "messagingChannel",
            ],
            "\(rejection.problems)")
        #expect(
            rejection.problems.map(\.code) == [
                "unknown_field", "missing_field", "invalid_field", "invalid_field", "missing_field", "invalid_field", "invalid_field",
            ])
        #expect(rejection.code == "unknown_field")
        #expect(rejection.message.contains("eventName is required") && rejection.message.contains("customData.value must be a number"))
        #expect(!rejection.message.contains("a@b.co"))
    }

    /// The rest of Meta's event: app events with their app data, business messaging with its
    /// channel, the original event and attribution data passed through, the other catalogs'
    /// content types and the delivery category.
    @Test func theRestOfMetasEvent() throws {
        let extinfo =
            #"["i2","com.shop","1.0","1.0 (1)","17.0","iPhone15,2","en_US","GMT-8","Carrier","390","844","3","6","256","128","America/Los_Angeles"]"#
        let app = try payload(
            #"{"eventName":"Purchase","eventTime":1789999900,"actionSource":"app","userData":{"madid":"38400000-8cf0-11bd-b23e-10b96e40000d"},"customData":{"value":5,"currency":"USD","contentType":"vehicle","deliveryCategory":"curbside"},"appData":{"advertiserTrackingEnabled":1,"applicationTrackingEnabled":false,"extinfo":\#(extinfo),"campaignIds":"abc"}}"#
        )
        let data = try #require(app["app_data"])
        #expect(data["advertiser_tracking_enabled"] == .bool(true) && data["application_tracking_enabled"] == .bool(false))
        #expect(data["extinfo"]?.array?.count == 16 && data["campaign_ids"] == .string("abc"))
        #expect(
            app["custom_data"]?["content_type"] == .string("vehicle") && app["custom_data"]?["delivery_category"] == .string("curbside"))
        let messaging = try payload(
            #"{"eventName":"LeadSubmitted","eventTime":1789999900,"actionSource":"business_messaging","messaging_channel":"whatsapp","userData":{"ctwa_clid":"ARAk..."},"original_event_data":{"event_name":"Lead","event_time":1789999000},"attributionData":{"ad_id":"120200000000"}}"#
        )
        #expect(messaging["messaging_channel"] == .string("whatsapp"))
        #expect(messaging["original_event_data"]?["event_name"] == .string("Lead"))
        #expect(messaging["attribution_data"]?["ad_id"] == .string("120200000000"))
    }

    /// The other name keys Meta lists, the parts of a date of birth, a US ZIP+4, and ids sent
    /// as numbers: each normalized as Meta documents (and as the SDK does: `SDKParityTests`).
    @Test func theOtherCustomerInformationKeys() throws {
        let built = try payload(
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"f5first":"Christopher","f5last":" Smithson","fi":"J.","dobd":"7","dobm":"12","doby":"1990","zp":"94025 1234","lead_id":1234567890123456,"app_user_id":"u-1"}}"#
        )
        let user = try #require(built["user_data"])
        for (key, normalized) in [
            ("f5first", "chris"), ("f5last", "smith"), ("fi", "j"), ("dobd", "07"), ("dobm", "12"), ("doby", "1990"), ("zp", "94025"),
        ] {
            #expect(user[key] == .string(UserDataNormalizer.hash(normalized)), "\(key)")
        }
        #expect(user["lead_id"] == .string("1234567890123456"))
        #expect(user["app_user_id"] == .string("u-1"))
        for zip in ["94025-1234", "940251234", "94025"] {
            #expect(UserDataNormalizer.normalize("zp", zip) == .success("94025"), "\(zip)")
        }
        // Not a US ZIP+4: kept as before (lower case, no spaces, up to a dash).
        #expect(UserDataNormalizer.normalize("zp", "SW1A 1AA") == .success("sw1a1aa"))
        #expect(UserDataNormalizer.normalize("zp", "01310-100") == .success("01310"))
        for (key, bad) in [("dobd", "32"), ("dobd", "0"), ("dobm", "13"), ("doby", "90"), ("doby", "١٩٩٠"), ("fi", "42")] {
            #expect((try? UserDataNormalizer.normalize(key, bad).get()) == nil, "\(key) \(bad)")
        }
    }

    @Test func dataProcessingOptionsBecomeMetasThreeFields() throws {
        let built = try payload(
            #"{"eventName":"Lead","eventTime":1789999900,"actionSource":"email","userData":{"em":"a@b.co"},"dataProcessingOptions":{"options":["LDU"],"country":1,"state":1000}}"#
        )
        #expect(built["data_processing_options"] == .array([.string("LDU")]))
        #expect(built["data_processing_options_country"] == .int(1))
        #expect(built["data_processing_options_state"] == .int(1000))
    }
}
