import CompassDev
import CompassHosts

Runtime.run(DevConsoleHandler.self)
