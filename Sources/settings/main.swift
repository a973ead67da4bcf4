import Compass

CGIHost.run(.settings)
