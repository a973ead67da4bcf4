import Foundation
import Testing

@testable import CompassDev
@testable import CompassHandlers
@testable import CompassHosts
@testable import CompassMeta
@testable import CompassPlatform
@testable import CompassStorage

@Suite struct NormalizationTests {
    func hashed(_ key: String, _ value: String) -> String? {
        guard case .success(let normalized) = UserDataNormalizer.normalize(key, value) else { return nil }
        return UserDataNormalizer.hash(normalized)
    }

    func normalized(_ key: String, _ value: String) -> String? {
        if case .success(let text) = UserDataNormalizer.normalize(key, value) { return text }
        return nil
    }

    @Test func matchesMetasPublishedHashes() {
        #expect(hashed("em", "John_Smith@gmail.com") == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f")
        #expect(hashed("ph", "16505551212") == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176")
        #expect(hashed("fn", "mary") == "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec")
        #expect(hashed("ph", "+1 (650) 555-1212") == hashed("ph", "16505551212"))
        #expect(hashed("em", "  JOHN_SMITH@gmail.com ") == hashed("em", "John_Smith@gmail.com"))
    }

    static let cases: [(String, String, String?)] = [
        ("em", " Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("em", "not-an-email", nil),
        ("em", "a@b", nil),
        ("ph", "+44 20 7946 0958", "442079460958"),
        ("ph", "001 650 555 1212", "16505551212"),
        ("ph", "1.650.555.1212", "16505551212"),
        ("ph", "+1 (650) 555-1212 ext", "16505551212"),
        ("ph", "tel:+1-650-555-1212", "16505551212"),
        ("ph", "call me", nil),
        ("ph", "12345", nil),
        ("fn", "  Mary-Ann ", "maryann"),
        ("fn", "Émilie", "émilie"),
        ("ln", "O'Brien Jr.", "obrienjr"),
        ("fn", "123", nil),
        ("ge", "Female", "f"),
        ("ge", "M", "m"),
        ("ge", "male", "m"),
        ("ge", "x", nil),
        ("db", "1990-02-14", "19900214"),
        ("db", "19900214", "19900214"),
        ("db", "1990/2/14", "19900214"),
        ("db", "02/14/1990", "19900214"),
        ("db", "14/02/1990", "19900214"),
        ("db", "03/04/1990", nil),
        ("db", "1990-02-30", nil),
        ("db", "2000-02-29", "20000229"),
        ("db", "yesterday", nil),
        ("db", "١٩٩٠-٠٢-١٤", nil),
        ("db", "99999999999999999999-1-1", nil),
        ("ct", "San Francisco", "sanfrancisco"),
        ("ct", "Saint-Étienne 42", "saintétienne"),
        ("st", "California", "ca"),
        ("st", "CA", "ca"),
        ("st", "new york", "ny"),
        ("st", "Bayern", "bayern"),
        ("zp", "94025-1234", "94025"),
        ("zp", "SW1A 1AA", "sw1a1aa"),
        ("country", "US", "us"),
        ("country", "United States", "us"),
        ("country", "DEU", "de"),
        ("country", "Germany", "de"),
        ("country", "Côte d'Ivoire", "ci"),
        ("country", "Narnia", nil),
        ("external_id", " user-123 ", "user-123"),
    ]

    @Test(arguments: cases)
    func normalizesEachKeyAsDocumented(key: String, input: String, expected: String?) {
        #expect(normalized(key, input) == expected)
    }

    @Test func neverHashesADigestTwice() {
        let digest = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F"
        for key in UserDataNormalizer.hashedKeys {
            #expect(hashed(key, digest) == digest.lowercased())
            #expect(hashed(key, " \(digest.lowercased()) ") == digest.lowercased())
        }
    }

    @Test(arguments: [
        ("192.168.1.10", true), ("255.255.255.255", true), ("256.1.1.1", false), ("1.2.3", false),
        ("01.2.3.4", false), ("2001:db8::1", true), ("::1", true), ("::ffff:192.0.2.1", true),
        ("fe80::1%eth0", true), ("2001:db8:::1", false), ("1:2:3:4:5:6:7:8:9", false), ("hello", false),
        ("1:2:3:4:5:6:7:8", true), ("::", true),
    ])
    func recognisesIPAddresses(address: String, valid: Bool) {
        #expect(UserDataNormalizer.isIPAddress(address) == valid)
    }
}

/// The byte-level fast paths (ASCII text) give what the Unicode rules give, on every input.
@Suite struct NormalizationFastPathTests {
    static let samples = [
        "", " ", "\t\n\u{0B}\u{0C}\r ", "Mary", "  Mary Smith\t", "\u{A0}Mary\u{A0}", "\u{2003}José\u{2003}", " Zoë ", "O'Brien-Smith 3rd",
        "+1 (650) 555-1212", "00441234567890", "٣٤٥ 12345678", "Ｍａｒｙ", "\u{85}x\u{85}", "a\u{301} ", " \u{1F600} ", "日本 東京", "\r\n",
    ]

    @Test func trimmingLettersAndDigitsMatchTheUnicodeRules() {
        for text in Self.samples {
            let scalars = text.unicodeScalars
            let trimmed =
                scalars.firstIndex(where: { !$0.properties.isWhitespace }).map { first in
                    String(scalars[first...scalars.lastIndex(where: { !$0.properties.isWhitespace })!])
                } ?? ""
            #expect(text.trimmingWhitespace == trimmed, "\(text.debugDescription)")
            let letters = String(text.unicodeScalars.filter { $0.properties.isAlphabetic }.map { Character($0) }).lowercased()
            #expect(UserDataNormalizer.lettersOnly(text) == letters, "\(text.debugDescription)")
            var digits = String(text.unicodeScalars.filter { ("0"..."9").contains($0) }.map { Character($0) })
            while digits.hasPrefix("0") { digits.removeFirst() }
            #expect(UserDataNormalizer.phone(text) == ((7...15).contains(digits.count) ? digits : nil), "\(text.debugDescription)")
        }
    }

    @Test func aClickIdIsFoundWhereverItIsInTheQueryAndOnlyThere() {
        #expect(ConversionEvent.fbclid(in: "https://x.example/?a=1&fbclid=IwAR2.abc#top") == "IwAR2.abc")
        #expect(ConversionEvent.fbclid(in: "https://x.example/?fbclid=abc") == "abc")
        for url in [
            "https://x.example/?order=1", "https://x.example/?xfbclid=1", "https://x.example/?a=fbclid", "https://x.example/?fbclid=",
            "https://x.example/#?fbclid=abc", "https://x.example/fbclid=abc", "https://x.example/?fbc", "",
        ] {
            #expect(ConversionEvent.fbclid(in: url) == nil, "\(url)")
        }
    }
}

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
