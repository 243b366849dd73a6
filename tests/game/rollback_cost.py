"""Run: PYTHONPATH=. .venv/bin/python tests/game/rollback_cost.py (not a test).

Frame cost of world prediction in the hockey world: 60 frames/s, a snapshot every 2nd frame, 20 inputs
re-simulated on each, one tick stepped per frame, display + correction fade every frame."""

import statistics
import time

from demos.hockey.rules import CENTER_Y, HOME_X, LEFT_SIDE, RIGHT_SIDE, Mallet, Match, Puck, move
from sprocket.game import World
from sprocket.game.rollback import WorldPredictor

world = World()
me = world.spawn(Mallet(x=HOME_X[LEFT_SIDE], y=CENTER_Y, side=LEFT_SIDE))
world.spawn(Mallet(x=HOME_X[RIGHT_SIDE], y=CENTER_Y, side=RIGHT_SIDE))
puck = world.spawn(Puck(vx=700.0, vy=300.0))
world.spawn(Match(phase="play"))
p = WorldPredictor(1 / 60, rule=move)
costs, resims = [], []
for frame in range(1, 20001):
    keys = {"x": 1.0 if frame % 90 < 45 else -1.0, "y": 1.0 if frame % 50 < 25 else -1.0}
    move(world[me], keys, 1 / 60)
    world[puck].simulate(world, 1 / 60)
    t0 = time.perf_counter()
    p.step(frame, keys)
    if frame % 2 == 0 and frame > 20:
        resims.append(p.rewind(world.snapshot(frame - 20, 0.0), frame - 20, me))
    p.display()
    p.advance_display(1 / 60)
    costs.append(time.perf_counter() - t0)
costs.sort()
print(f"frames {len(costs)}  re-simulated per snapshot {statistics.mean(resims):.0f} ticks")
print(
    f"per frame: mean {statistics.mean(costs) * 1e3:.3f} ms  p50 {costs[len(costs) // 2] * 1e3:.3f} ms  "
    f"p99 {costs[int(len(costs) * 0.99)] * 1e3:.3f} ms  max {costs[-1] * 1e3:.3f} ms"
)
