/// `Codable` over `JSONValue`: the one codec of every stored record and every JSON answer. A
/// type's synthesized (or written) `Codable` conformance is its only description; these read
/// and write it as Foundation's `JSONDecoder` and `JSONEncoder` would with `JSON`'s settings
/// (ISO 8601 dates in whole seconds, sorted keys, no escaped slashes), without their set-up
/// in every short-lived process (`JSONCodingTests` holds the two to the same answers).
package enum JSONCoding {
    package static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try ValueDecoder.unbox(type, value, path: [])
    }

    package static func encode(_ value: some Encodable) throws -> JSONValue {
        try ValueEncoder.box(value, path: []).json
    }

    /// `2026-11-28T03:26:50Z`: whole seconds, UTC (`JSONEncoder`'s `.iso8601`).
    package static func iso8601(_ date: Date) -> String {
        let time = CivilTime(unixSeconds: Int64(date.timeIntervalSince1970.rounded(.down)))
        guard (0...9999).contains(time.year) else {
            let two = CivilTime.two
            let year = String(time.year)
            return String(repeating: "0", count: max(0, 4 - year.count)) + year + "-" + two(time.month) + "-" + two(time.day)
                + "T" + two(time.hour) + ":" + two(time.minute) + ":" + two(time.second) + "Z"
        }
        // Twenty bytes written in place: every date a record holds.
        return String(unsafeUninitializedCapacity: 20) { text in
            func put(_ value: Int64, _ count: Int, at offset: Int) {
                var rest = value
                for place in (offset..<(offset + count)).reversed() {
                    text[place] = UInt8(48 + rest % 10)
                    rest /= 10
                }
            }
            put(time.year, 4, at: 0)
            put(time.month, 2, at: 5)
            put(time.day, 2, at: 8)
            put(time.hour, 2, at: 11)
            put(time.minute, 2, at: 14)
            put(time.second, 2, at: 17)
            (text[4], text[7], text[10]) = (UInt8(ascii: "-"), UInt8(ascii: "-"), UInt8(ascii: "T"))
            (text[13], text[16], text[19]) = (UInt8(ascii: ":"), UInt8(ascii: ":"), UInt8(ascii: "Z"))
            return 20
        }
    }

    /// A date as `JSONDecoder`'s `.iso8601` reads it: a valid date in the whole-second UTC form
    /// straight from its bytes, any other text (an offset, a day past the month's end) through
    /// Foundation's own ISO 8601 reader.
    package static func date(iso8601 text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58, bytes[19] == 90 else {
            return try? Date(text, strategy: .iso8601)
        }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard ASCII.isDigit(bytes[index]) else { return nil }
                value = value * 10 + Int64(bytes[index] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19)
        else { return try? Date(text, strategy: .iso8601) }
        let time = CivilTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        // Foundation's reader rolls a day past the month's end over into the next: so does this.
        guard time.isValid else { return try? Date(text, strategy: .iso8601) }
        return Date(timeIntervalSince1970: TimeInterval(time.unixSeconds))
    }
}

// MARK: Decoding

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func unbox<T: Decodable>(_ type: T.Type, _ value: JSONValue, path: [any CodingKey]) throws -> T {
        try unbox(type, value, parent: path, key: nil)
    }

    /// `value` as a `T`, at `key` under `parent`: the path is made only for an error or for a
    /// type that decodes itself (a value of the standard library costs no array).
    static func unbox<T: Decodable>(_ type: T.Type, _ value: JSONValue, parent: [any CodingKey], key: (any CodingKey)?) throws -> T {
        // A value of a type of the standard library that is null is missing; another type reads
        // null as it will (`Optional` as nil).
        func mismatch() -> DecodingError {
            let path = key.map { parent + [$0] } ?? parent
            guard value != .null else {
                return .valueNotFound(T.self, .init(codingPath: path, debugDescription: "Expected \(T.self), found null."))
            }
            return .typeMismatch(T.self, .init(codingPath: path, debugDescription: "Expected \(T.self), found \(value.kind)."))
        }
        // Metatypes compared, not cast: the common types first.
        if T.self == String.self {
            guard case .string(let text) = value else { throw mismatch() }
            return text as! T
        }
        if T.self == JSONValue.self { return value as! T }
        if T.self == Bool.self {
            guard case .bool(let flag) = value else { throw mismatch() }
            return flag as! T
        }
        if T.self == Double.self {
            guard let number = value.number else { throw mismatch() }
            return number as! T
        }
        if T.self == Int.self {
            guard let whole = value.integer, let number = Int(exactly: whole) else { throw mismatch() }
            return number as! T
        }
        if T.self == Date.self {
            guard case .string(let text) = value else { throw mismatch() }
            guard let date = JSONCoding.date(iso8601: text) else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: key.map { parent + [$0] } ?? parent, debugDescription: "Expected date string to be ISO8601-formatted."))
            }
            return date as! T
        }
        if T.self == Float.self {
            guard let number = value.number else { throw mismatch() }
            return Float(number) as! T
        }
        if T.self == Data.self {
            guard case .string(let text) = value else { throw mismatch() }
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: key.map { parent + [$0] } ?? parent, debugDescription: "Encountered Data is not valid Base64."))
            }
            return data as! T
        }
        if let integer = T.self as? any FixedWidthInteger.Type {
            guard let whole = value.integer, let number = integer.init(exactly: whole) else { throw mismatch() }
            return number as! T
        }
        return try T(from: ValueDecoder(value: value, codingPath: key.map { parent + [$0] } ?? parent))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw DecodingError.typeMismatch(
                [String: Any].self, .init(codingPath: codingPath, debugDescription: "Expected an object, found \(value.kind)."))
        }
        return KeyedDecodingContainer(KeyedDecoding<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw DecodingError.typeMismatch(
                [Any].self, .init(codingPath: codingPath, debugDescription: "Expected an array, found \(value.kind)."))
        }
        return UnkeyedDecoding(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleDecoding(value: value, codingPath: codingPath) }
}

private struct SingleDecoding: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try ValueDecoder.unbox(type, value, path: codingPath) }
}

private struct KeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try ValueDecoder.unbox(type, try member(key), parent: codingPath, key: key)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = members[key.stringValue], value != .null else { return nil }
        return try ValueDecoder.unbox(type, value, parent: codingPath, key: key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        ValueDecoder(value: members["super"] ?? .null, codingPath: codingPath + [CodingKeyText("super")])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        ValueDecoder(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

private struct UnkeyedDecoding: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private var here: [any CodingKey] { codingPath + [CodingKeyText(index: currentIndex)] }

    private func next<T>(_ type: T.Type) throws -> JSONValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: here, debugDescription: "Unkeyed container is at end."))
        }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard try next(JSONValue.self) == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // No key per item (it would cost a box): an error's path ends at the array.
        let value = try ValueDecoder.unbox(type, try next(type), parent: codingPath, key: nil)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let container = try ValueDecoder(value: try next([String: Any].self), codingPath: here).container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try ValueDecoder(value: try next([Any].self), codingPath: here).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = ValueDecoder(value: try next(JSONValue.self), codingPath: here)
        currentIndex += 1
        return decoder
    }
}

/// A coding path's member name or array index.
private struct CodingKeyText: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(_ text: String) { stringValue = text }
    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.init(index: intValue) }
}

// MARK: Encoding

/// What an encoder writes into: a value, or an object or array whose members are still being
/// written by containers that share it.
private final class Node {
    enum Content {
        case value(JSONValue)
        case object([String: Node])
        case array([Node])
    }

    var content: Content

    init(_ content: Content) { self.content = content }

    var json: JSONValue {
        switch content {
        case .value(let value): value
        case .object(let members): .object(members.mapValues(\.json))
        case .array(let items): .array(items.map(\.json))
        }
    }
}

private struct ValueEncoder: Encoder {
    let node: Node
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func box<T: Encodable>(_ value: T, path: [any CodingKey]) throws -> Node {
        switch value {
        case let json as JSONValue: return Node(.value(json))
        case let text as String: return Node(.value(.string(text)))
        case let flag as Bool: return Node(.value(.bool(flag)))
        case let number as Double: return Node(.value(try double(number, path: path)))
        case let number as Float: return Node(.value(try double(Double(number), path: path)))
        case let date as Date: return Node(.value(.string(JSONCoding.iso8601(date))))
        case let data as Data: return Node(.value(.string(data.base64EncodedString())))
        case let integer as any FixedWidthInteger:
            guard let number = Int64(exactly: integer) else {
                throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "\(integer) is out of range."))
            }
            return Node(.value(.int(number)))
        default:
            let node = Node(.value(.object([:])))
            try value.encode(to: ValueEncoder(node: node, codingPath: path))
            return node
        }
    }

    /// `JSONEncoder` writes a whole double without a fraction (`100`, not `100.0`).
    private static func double(_ number: Double, path: [any CodingKey]) throws -> JSONValue {
        guard number.isFinite else {
            throw EncodingError.invalidValue(number, .init(codingPath: path, debugDescription: "\(number) is not valid JSON."))
        }
        if number.rounded() == number, abs(number) < 1e15 { return .int(Int64(number)) }
        return .double(number)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = node.content {} else { node.content = .object([:]) }
        return KeyedEncodingContainer(KeyedEncoding<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = node.content {} else { node.content = .array([]) }
        return UnkeyedEncoding(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleEncoding(node: node, codingPath: codingPath) }
}

private struct SingleEncoding: SingleValueEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]

    func encodeNil() { node.content = .value(.null) }
    func encode<T: Encodable>(_ value: T) throws { node.content = try ValueEncoder.box(value, path: codingPath).content }
}

private struct KeyedEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [any CodingKey]

    private func set(_ key: String, _ member: Node) {
        guard case .object(var members) = node.content else { return }
        node.content = .value(.null)  // the members are not copied while they change
        members[key] = member
        node.content = .object(members)
    }

    func encodeNil(forKey key: Key) { set(key.stringValue, Node(.value(.null))) }

    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(key.stringValue, try ValueEncoder.box(value, path: codingPath + [key]))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let member = Node(.object([:]))
        set(key.stringValue, member)
        return KeyedEncodingContainer(KeyedEncoding<NestedKey>(node: member, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let member = Node(.array([]))
        set(key.stringValue, member)
        return UnkeyedEncoding(node: member, codingPath: codingPath + [key])
    }

    func superEncoder() -> any Encoder {
        let member = Node(.object([:]))
        set("super", member)
        return ValueEncoder(node: member, codingPath: codingPath + [CodingKeyText("super")])
    }

    func superEncoder(forKey key: Key) -> any Encoder {
        let member = Node(.object([:]))
        set(key.stringValue, member)
        return ValueEncoder(node: member, codingPath: codingPath + [key])
    }
}

private struct UnkeyedEncoding: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [any CodingKey]

    var count: Int {
        guard case .array(let items) = node.content else { return 0 }
        return items.count
    }

    private func append(_ item: Node) {
        guard case .array(var items) = node.content else { return }
        node.content = .value(.null)  // the items are not copied while they change
        items.append(item)
        node.content = .array(items)
    }

    func encodeNil() { append(Node(.value(.null))) }

    func encode<T: Encodable>(_ value: T) throws {
        append(try ValueEncoder.box(value, path: codingPath + [CodingKeyText(index: count)]))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let item = Node(.object([:]))
        let path = codingPath + [CodingKeyText(index: count)]
        append(item)
        return KeyedEncodingContainer(KeyedEncoding<NestedKey>(node: item, codingPath: path))
    }

    func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let item = Node(.array([]))
        let path = codingPath + [CodingKeyText(index: count)]
        append(item)
        return UnkeyedEncoding(node: item, codingPath: path)
    }

    func superEncoder() -> any Encoder {
        let item = Node(.object([:]))
        let path = codingPath + [CodingKeyText(index: count)]
        append(item)
        return ValueEncoder(node: item, codingPath: path)
    }
}

extension JSONValue {
    /// What a value is, for a decoding error's message.
    fileprivate var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
