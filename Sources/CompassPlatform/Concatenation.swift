extension String {
    /// `parts` one after another, made in one allocation: `a + b + c` makes a String at each
    /// `+`, and an append past fifteen bytes (where a String stops holding its bytes inline)
    /// cost about 400 instructions in the file store's paths and the index keys.
    package init(concatenating parts: String...) {
        var count = 0
        for part in parts { count += part.utf8.count }
        guard count > 0 else {
            self = ""
            return
        }
        self = String(unsafeUninitializedCapacity: count) { buffer in
            var at = 0
            for var part in parts {
                part.withUTF8 { bytes in
                    guard let source = bytes.baseAddress else { return }
                    (buffer.baseAddress! + at).update(from: source, count: bytes.count)
                    at += bytes.count
                }
            }
            return at
        }
    }
}
