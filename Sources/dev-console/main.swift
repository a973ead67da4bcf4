import Compass

CGIHost.run(.devConsole)
