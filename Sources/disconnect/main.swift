import Compass

CGIHost.run(.disconnect)
