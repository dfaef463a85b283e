import sys, time
from caretwin.workspace import Workspace
from caretwin.calibrate import calibrate
from caretwin.simulate import declared_params
truth = declared_params()
ws = Workspace.open(sys.argv[1])
t=time.time(); cal = calibrate(ws); print(time.time()-t)
for e in cal.estimates:
    tv = truth[e.name]
    print(e.name, e.value, e.low, e.high, 'truth', tv, 'OK' if e.contains(tv) else 'MISS')
