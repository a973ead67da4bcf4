/// The one JSON setup of the project: ISO 8601 dates, sorted keys, no escaped slashes, every
/// `Codable` value read by `JSONCoding` from a `JSONValue` and written by it as bytes.
package enum JSON {
    package static func encode(_ value: some Encodable) -> [UInt8] {
        if let json = value as? JSONValue { return json.serialized }
        // Encoding our own Codable values cannot fail (no non-finite floats are produced).
        return (try? JSONCoding.encode(value)) ?? Array("null".utf8)
    }

    package static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let value = try JSONParser.parse(bytes)
        if type == JSONValue.self { return value as! T }
        return try JSONCoding.decode(type, from: value)
    }
}
