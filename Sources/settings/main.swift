import CompassHandlers
import CompassHosts

Runtime.run(SettingsHandler.self)
