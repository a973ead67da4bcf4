/// An HTTP transport whose calls all end by one instant (`monotonicMilliseconds()`): a host with
/// a deadline of its own (a Lambda invocation) bounds every Graph and store call by it, so the
/// handler answers before the host gives up on it. A call made after the instant fails at once
/// as a timeout, as one that ran out of time would.
package struct DeadlineTransport: HTTPTransport {
    package var base: any HTTPTransport
    package var deadline: Int64

    package init(base: any HTTPTransport, deadline: Int64) {
        self.base = base
        self.deadline = deadline
    }

    package func send(_ request: HTTPRequest) throws(HTTPFailure) -> HTTPResponse {
        let remaining = deadline - monotonicMilliseconds()
        guard remaining > 0 else { throw .timeout }
        var bounded = request
        bounded.timeoutMilliseconds = Int(min(Int64(request.timeoutMilliseconds), remaining))
        return try base.send(bounded)
    }
}
