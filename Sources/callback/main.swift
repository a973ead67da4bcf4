import CompassHandlers
import CompassHosts

Runtime.run(CallbackHandler.self)
