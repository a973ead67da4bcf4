import CompassDev
import CompassHosts

Runtime.run(SandboxHandler.self)
