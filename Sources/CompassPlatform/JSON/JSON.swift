/// The one JSON setup of the project: ISO 8601 dates, sorted keys, no escaped slashes.
package enum JSON {
    package static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    package static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    package static func encode(_ value: some Encodable) -> [UInt8] {
        if let json = value as? JSONValue { return json.serialized }
        // Encoding our own Codable values cannot fail (no non-finite floats are produced).
        return (try? Array(encoder().encode(value))) ?? Array("null".utf8)
    }

    package static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        if type == JSONValue.self { return try JSONParser.parse(bytes) as! T }
        return try decoder().decode(type, from: Data(bytes))
    }

    /// A record with a reader of its own: that reader first, `JSONDecoder` for what it declines.
    package static func decode<T: JSONFastDecodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        if let json = try? JSONParser.parse(bytes), let value = T(fastJSON: json) { return value }
        return try decoder().decode(type, from: Data(bytes))
    }
}
