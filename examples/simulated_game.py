"""A small simulated game driving affetto over WebSocket: a hero explores, enemies close in,
a fight, a win, a loss. Start the server first::

    affetto serve --profile examples/profiles/action.yaml
    python examples/simulated_game.py            # or: --url ws://HOST:9001 --seconds 60

It prints the game's events and flashes a marker on every downbeat the server sends.
"""

from __future__ import annotations

import argparse
import asyncio
import random

from affetto_client import AffettoClient


async def play(url: str, seconds: float, seed: int = 1) -> dict[str, int]:
    """Run the scene for ``seconds``; returns counts of what came back (beats, bars, errors)."""
    rng = random.Random(seed)
    counts = {"beat": 0, "downbeat": 0, "bar": 0, "transition": 0, "error": 0}

    def on_beat(event: dict) -> None:
        counts["beat"] += 1
        if event["downbeat"]:
            counts["downbeat"] += 1
            print(f"  ♪ bar {event['bar']:3d}  {event['tempo_bpm']:5.1f} bpm")

    async with AffettoClient(url) as music:
        music.on("beat", on_beat)
        music.on("bar", lambda e: counts.__setitem__("bar", counts["bar"] + 1))
        music.on("transition", lambda e: counts.__setitem__("transition", counts["transition"] + 1))
        await music.subscribe()
        status = await music.status()
        params = set(status["params"])
        print(f"session {status['session']} (profile {status['profile']}), starting in {status['state']}")
        music.on("error", lambda e: counts.__setitem__("error", counts["error"] + 1))
        await music.leitmotif("hero", [[0, 67, 1, 84], [1, 72, 1.5, 92], [2.5, 71, 0.5, 80], [3, 72, 1, 86]])
        health, enemies = 100.0, 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        phase = "explore"
        while (t := loop.time() - start) < seconds:
            if phase == "explore" and t > seconds * 0.2:
                phase = "ambush"
                print("game: enemies spotted")
                await music.leitmotif("hero")
            if phase == "ambush":
                enemies = min(8, enemies + rng.choice([0, 1, 1, 2]))
                health -= rng.uniform(0, 6) * enemies / 4
                if enemies >= 6 and t > seconds * 0.4:
                    phase = "fight"
                    print("game: combat!")
                    await music.state("combat", sync="bar")
                    await music.stinger("hit")
            elif phase == "fight":
                enemies = max(0, enemies - rng.choice([0, 1, 1]))
                if enemies == 0 or t > seconds * 0.75:
                    phase = "won"
                    print("game: victory")
                    await music.stinger("fanfare")
                    await music.state("victory")
            elif phase == "won" and t > seconds * 0.9:
                phase = "after"
                await music.emotion(-0.6, -0.7, 0.0, sync="bar", seek_per_s=0.3)
            if {"enemies_near", "health"} <= params:  # the action profile's game parameters
                await music.param("enemies_near", enemies)
                await music.param("health", max(0.0, health))
            await asyncio.sleep(0.25)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:9001")
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    print(asyncio.run(play(args.url, args.seconds)))


if __name__ == "__main__":
    main()
