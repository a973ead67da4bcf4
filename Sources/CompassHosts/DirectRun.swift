import CompassHandlers
import CompassPlatform
import CompassStorage

/// A handler run without a request (`refresh-cron` from cron or by hand): its summary as JSON
/// on stdout and exit status 0, or the error body the one rule gives and exit status 1.
package enum DirectRun {
    static func run<H: DirectlyRunnable>(_ handler: H.Type, process: ProcessContext) -> Int32 {
        let result = outcome(H.self, environment: process.environment, workingDirectory: process.workingDirectory)
        print(result.output)
        return result.status
    }

    package static func outcome<H: DirectlyRunnable>(
        _ handler: H.Type, environment: [String: String],
        workingDirectory: String
    ) -> (output: String, status: Int32) {
        var logger = Logger(function: H.name, level: .info)
        do {
            let config = try Config.load(from: environment, workingDirectory: workingDirectory)
            logger = Logger(function: H.name, level: config.platform.logLevel)
            let services = try Services.live(config: config)
            let summary = try H(dependencies: services.dependencies(logger: logger)).run()
            return (String(decoding: JSON.encode(summary), as: UTF8.self), 0)
        } catch {
            return (String(decoding: APIError.answer(for: error, logger: logger).body, as: UTF8.self), 1)
        }
    }
}
