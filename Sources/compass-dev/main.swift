// Development tool: run a handler on a fixture request as a CGI host would, mint sessions,
// make keys. Not deployed.
import CompassDev
import CompassPlatform
import Foundation

let usage = """
    usage: compass-dev invoke FUNCTION FIXTURE   run a handler on a raw HTTP request file
           compass-dev session TENANT [SECONDS]   print a session token (needs COMPASS_JWT_SECRET)
           compass-dev lighttpd-config FUNCTIONS_JSON BIN_DIR DATA_DIR PORT [--sandbox] [--fastcgi]
                                                  print a lighttpd config (values from the environment)
           compass-dev sweep [--as-of ISO8601]    delete the records of STORE_URL expired by then (default now)
           compass-dev seed-tenants COUNT [--due-fraction F] [--sandbox-state DIR]
                                                  write COUNT connected tenants into STORE_URL, F of them (0.1)
                                                  due now; with DIR, their tokens into the Graph sandbox
           compass-dev nginx-config FUNCTIONS_JSON BIN_DIR DATA_DIR PORT [--fastcgi] [--sandbox]
           compass-dev apache-config FUNCTIONS_JSON BIN_DIR DATA_DIR PORT [--fastcgi] [--sandbox]
                                                  print an nginx or Apache config (values from the environment)
           compass-dev sam-template FUNCTIONS_JSON print the AWS SAM template of the production functions
           compass-dev migrate                    create or upgrade the PostgreSQL schema of STORE_URL (idempotent)
           compass-dev audit TENANT               the tenant's queued and dead-lettered event ids and unreadable
                                                  records in STORE_URL, as JSON (scripts/soak)
           compass-dev key                        print a new CREDENTIALS_KEY
           compass-dev secret                     print a new random secret
    """

func fail(_ message: String, status: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(status)
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "invoke":
    guard arguments.count == 3 else { fail(usage) }
    exit(Invoke.run(function: arguments[1], fixture: arguments[2]))
case "session":
    guard arguments.count >= 2 else { fail(usage) }
    guard let secret = ProcessInfo.processInfo.environment["COMPASS_JWT_SECRET"] else { fail("COMPASS_JWT_SECRET is not set") }
    let seconds = arguments.count > 2 ? Int(arguments[2]) ?? 3600 : 3600
    guard let token = DevTools.mintSession(tenantId: arguments[1], secret: secret, seconds: seconds) else {
        fail("tenant ids are 1 to 64 of A-Z a-z 0-9 _ -")
    }
    print(token)
case "store-increment":
    guard arguments.count == 4, let times = Int(arguments[3]) else { fail("usage: compass-dev store-increment STORE_URL KEY TIMES") }
    exit(
        DevTools.incrementCounter(
            storeURL: arguments[1], key: arguments[2], times: times, environment: ProcessInfo.processInfo.environment) ? 0 : 1)
case "function-env":
    // NAME=VALUE lines of the function's variables set in this environment (a FastCGI process
    // manager starts the function with exactly these).
    guard arguments.count == 3, let manifest = try? FunctionsManifest.load(path: arguments[1]) else { fail(usage) }
    guard let function = manifest.served(sandbox: true).first(where: { $0.name == arguments[2] }) else {
        fail("no function \(arguments[2])")
    }
    let environment = ProcessInfo.processInfo.environment
    for name in function.environment { if let value = environment[name] { print("\(name)=\(value)") } }
case "functions":
    // The names of the functions a host serves (with --sandbox, the development ones too).
    guard arguments.count >= 2, let manifest = try? FunctionsManifest.load(path: arguments[1]) else { fail(usage) }
    for function in manifest.served(sandbox: arguments.contains("--sandbox")) { print(function.name) }
case "migrate":
    do {
        print(try DevTools.migrate(environment: ProcessInfo.processInfo.environment))
    } catch let error as ConfigError {
        fail("\(error.variable) \(error.problem)", status: 1)
    } catch {
        fail("migration failed: \(error)", status: 1)
    }
case "sam-template":
    guard arguments.count == 2, let manifest = try? FunctionsManifest.load(path: arguments[1]) else { fail(usage) }
    print(SAMTemplate(manifest: manifest).render(), terminator: "")
case "lighttpd-config", "nginx-config", "apache-config":
    guard arguments.count >= 5, let port = Int(arguments[4]) else { fail(usage) }
    do {
        let setup = HostSetup(
            manifest: try FunctionsManifest.load(path: arguments[1]), binDirectory: arguments[2],
            dataDirectory: arguments[3], port: port, environment: ProcessInfo.processInfo.environment,
            fastCGI: arguments.contains("--fastcgi"), sandbox: arguments.contains("--sandbox"))
        switch arguments[0] {
        case "lighttpd-config": print(setup.lighttpdConfig(), terminator: "")
        case "nginx-config": print(setup.nginxConfig(), terminator: "")
        default: print(setup.apacheConfig(), terminator: "")
        }
    } catch {
        fail("cannot read \(arguments[1]): \(error)")
    }
case "seed-tenants":
    let seedUsage = "usage: compass-dev seed-tenants COUNT [--due-fraction F] [--sandbox-state DIR]"
    guard arguments.count >= 2, let count = Int(arguments[1]), count >= 0 else { fail(seedUsage) }
    var dueFraction = 0.1
    var sandboxState: String?
    var rest = arguments.dropFirst(2)
    while let option = rest.popFirst() {
        guard let value = rest.popFirst() else { fail(seedUsage) }
        switch option {
        case "--due-fraction":
            guard let fraction = Double(value), (0...1).contains(fraction) else { fail("--due-fraction takes a number from 0 to 1") }
            dueFraction = fraction
        case "--sandbox-state":
            guard value.hasPrefix("/") else { fail("--sandbox-state takes an absolute folder") }
            sandboxState = value
        default:
            fail(seedUsage)
        }
    }
    do {
        let seeded = try DevTools.seedTenants(
            environment: ProcessInfo.processInfo.environment, count: count,
            dueFraction: dueFraction, sandboxState: sandboxState)
        print(#"{"seeded":\#(seeded)}"#)
    } catch {
        fail("seeding failed: \(error)")
    }
case "store-bench":
    guard arguments.count == 3, let operations = Int(arguments[2]) else { fail("usage: compass-dev store-bench STORE_URL OPERATIONS") }
    guard
        let rate = DevTools.storeBenchmark(
            storeURL: arguments[1], operations: operations, environment: ProcessInfo.processInfo.environment)
    else { fail("store benchmark failed") }
    print(Int(rate))
case "sweep":
    var asOf = Date()
    if arguments.count == 3 && arguments[1] == "--as-of" {
        guard let parsed = try? Date(arguments[2], strategy: .iso8601) else {
            fail("--as-of takes an ISO 8601 time, e.g. 2026-11-27T12:00:00Z")
        }
        asOf = parsed
    } else if arguments.count != 1 {
        fail(usage)
    }
    do {
        print(try DevTools.sweep(environment: ProcessInfo.processInfo.environment, asOf: asOf))
    } catch {
        fail("sweep failed: \(error)")
    }
case "audit":
    guard arguments.count == 2 else { fail(usage) }
    do {
        print(try DevTools.audit(tenant: arguments[1], environment: ProcessInfo.processInfo.environment))
    } catch {
        fail("audit failed: \(error)")
    }
case "key":
    print(DevTools.newCredentialsKey())
case "secret":
    print(DevTools.newSecret())
default:
    fail(usage)
}
