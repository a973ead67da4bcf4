import Compass

CGIHost.run(.refreshCron)
