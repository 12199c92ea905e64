"""The effects:, wheels:, tts:, obs: and queue: sections, and the effect steps of redeems.

Everything goes through the real loader (``load_config``) on YAML written to a temporary file,
so paths and line numbers are the ones a streamer would see.
"""

import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from pixelbot.config import Config, load_config
from pixelbot.config.effects import (
    ClipStep,
    HideSourceStep,
    PlaySoundStep,
    RestartMediaStep,
    SayStep,
    SetTextStep,
    ShowSourceStep,
    SwitchSceneStep,
    ToggleFilterStep,
    WaitStep,
)
from pixelbot.config.queue import WheelPrize
from pixelbot.config.redeems import EffectAction, ObsAction
from pixelbot.errors import ConfigError

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"

STEP_NAMES = (
    "switch_scene, show_source, hide_source, clip, restart_media, set_text, toggle_filter, "
    "play_sound, wait, say"
)


def write(tmp_path: Path, text: str) -> Path:
    """Write YAML whose first line is line 1 (the leading newline of a literal is dropped)."""
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, env: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={} if env is None else env)
    return [str(issue) for issue in exc.value.issues]


def show(scene: str, source: str, seconds: float | None = None) -> ShowSourceStep:
    duration = None if seconds is None else timedelta(seconds=seconds)
    return ShowSourceStep.model_validate(
        {"do": "show_source", "scene": scene, "source": source, "for": duration}
    )


# ------------------------------------------------------------------------ the shipped file


@pytest.fixture(scope="module")
def shipped() -> Config:
    return load_config(SHIPPED_CONFIG, env={})


def test_shipped_effects(shipped: Config) -> None:
    assert list(shipped.effects) == ["hydrate", "confetti"]
    assert shipped.effects["hydrate"].steps == [
        show("Main", "HydrateGif", 10),
        PlaySoundStep(do="play_sound", file="splash.wav"),
    ]
    assert shipped.effects["confetti"].steps == [show("Main", "Confetti", 5)]


def test_shipped_wheel(shipped: Config) -> None:
    assert list(shipped.wheels) == ["main"]
    wheel = shipped.wheels["main"]
    assert wheel.prizes == [
        WheelPrize(name="50 Points", weight=30, points=50),
        WheelPrize(name="200 Points", weight=10, points=200),
        WheelPrize(name="1000 XP", weight=15, xp=1000),
        WheelPrize(name="Confetti", weight=15, effect="confetti"),
        WheelPrize(name="A compliment", weight=10, message="{user}, your chat game is immaculate."),
        WheelPrize(name="Nothing", weight=20),
    ]
    assert [prize.kind for prize in wheel.prizes] == [
        "points",
        "points",
        "xp",
        "effect",
        "message",
        "nothing",
    ]
    assert wheel.spin_lines == ["{user} is spinning the wheel!"]
    assert wheel.prize_lines == ["{user} won {prize}!"]


def test_shipped_tts(shipped: Config) -> None:
    tts = shipped.tts
    assert (tts.max_queue, tts.max_chars, tts.banned_words) == (5, 200, [])
    assert (tts.prefix, tts.voice, tts.rate) == ("{user} says", None, 175)
    assert (tts.dir, tts.player) == ("data/tts", "auto")
    # Not in the file: defaults.
    assert (tts.max_repeat, tts.max_word_repeat, tts.volume, tts.keep_files) == (3, 2, 1.0, 50)


def test_shipped_obs(shipped: Config) -> None:
    obs = shipped.obs
    assert (obs.enabled, obs.host, obs.port) == (False, "localhost", 4455)
    # "${OBS_PASSWORD:-}" with no OBS_PASSWORD: the empty default (the client sends no auth).
    assert isinstance(obs.password, SecretStr)
    assert obs.password.get_secret_value() == ""
    assert (obs.sound_source, obs.sounds_dir) == ("PixelSounds", "data/sounds")
    assert obs.timeout == timedelta(seconds=5)
    assert obs.start_replay_buffer is True


def test_shipped_queue(shipped: Config) -> None:
    timeouts = shipped.queue.timeouts
    assert (timeouts.tts, timeouts.wheel, timeouts.effect) == (
        timedelta(seconds=60),
        timedelta(seconds=30),
        timedelta(minutes=2),
    )
    assert shipped.queue.on_restart == "refund"


def test_effect_steps_of_the_shipped_redeems(shipped: Config) -> None:
    assert shipped.effect_steps(shipped.redeems["clip"].action) == [ClipStep(do="clip")]
    assert shipped.effect_steps(shipped.redeems["hydrate"].action) == [
        show("Main", "HydrateGif", 10),
        PlaySoundStep(do="play_sound", file="splash.wav"),
    ]
    with pytest.raises(ValueError) as not_an_effect:
        shipped.effect_steps(shipped.redeems["tts"].action)
    assert str(not_an_effect.value) == "a tts action is not an effect"
    with pytest.raises(ValueError) as not_an_effect:
        shipped.effect_steps(shipped.redeems["spin"].action)
    assert str(not_an_effect.value) == "a wheel action is not an effect"


# ---------------------------------------------------------------------------- step shapes


def test_every_step_and_its_shorthand(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          all:
            steps:
              - play_sound: x.wav
              - wait: 2s
              - switch_scene: BRB
              - say: "hi {user}"
              - clip: {}
              - clip:
              - restart_media: Intro
              - show_source: {scene: Main, source: Gif, for: 1m}
              - hide_source: {scene: Main, source: Cam}
              - switch_scene: {scene: BRB, back_after: 30s}
              - set_text: {source: Banner, text: "{user} redeemed {title}: {text}"}
              - toggle_filter: {source: Cam, filter: Blur, enabled: true, for: 250ms}
              - play_sound: {file: y.wav, source: Other}
              - clip: {start_replay_buffer: false}
              - {do: wait, duration: 1}
        """,
    )
    assert load_config(path, env={}).effects["all"].steps == [
        PlaySoundStep(do="play_sound", file="x.wav"),
        WaitStep(do="wait", duration=timedelta(seconds=2)),
        SwitchSceneStep(do="switch_scene", scene="BRB"),
        SayStep(do="say", message="hi {user}"),
        ClipStep(do="clip"),
        ClipStep(do="clip"),
        RestartMediaStep(do="restart_media", source="Intro"),
        show("Main", "Gif", 60),
        HideSourceStep.model_validate({"do": "hide_source", "scene": "Main", "source": "Cam"}),
        SwitchSceneStep(do="switch_scene", scene="BRB", back_after=timedelta(seconds=30)),
        SetTextStep(do="set_text", source="Banner", text="{user} redeemed {title}: {text}"),
        ToggleFilterStep.model_validate(
            {
                "do": "toggle_filter",
                "source": "Cam",
                "filter": "Blur",
                "enabled": True,
                "for": timedelta(milliseconds=250),
            }
        ),
        PlaySoundStep(do="play_sound", file="y.wav", source="Other"),
        ClipStep(do="clip", start_replay_buffer=False),
        WaitStep(do="wait", duration=timedelta(seconds=1)),
    ]


def test_for_is_read_into_for_(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          peek:
            steps:
              - show_source: {scene: Main, source: Gif, for: 10s}
              - hide_source: {scene: Main, source: Cam}
        """,
    )
    shown, hidden = load_config(path, env={}).effects["peek"].steps
    assert isinstance(shown, ShowSourceStep) and isinstance(hidden, HideSourceStep)
    assert shown.for_ == timedelta(seconds=10)
    assert hidden.for_ is None
    assert not hasattr(shown, "for")


def test_a_redeem_can_write_its_steps_inline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          wave:
            title: Wave
            action:
              type: effect
              steps: [say: "{user} waves", wait: 1s]
        """,
    )
    config = load_config(path, env={})
    action = config.redeems["wave"].action
    assert isinstance(action, EffectAction) and action.effect is None
    assert config.effect_steps(action) == [
        SayStep(do="say", message="{user} waves"),
        WaitStep(do="wait", duration=timedelta(seconds=1)),
    ]


# ---------------------------------------------------------------------------- step errors


def test_unknown_step_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          boom:
            steps:
              - explode: {}
        """,
    )
    assert problems(path) == [
        f"effects.boom.steps.0: unknown step 'explode'; steps are: {STEP_NAMES} "
        "(config.yaml line 4)"
    ]


def test_a_step_with_two_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          boom:
            steps:
              - wait: 1s
              - {play_sound: a.wav, wait: 2s}
        """,
    )
    assert problems(path) == [
        f"effects.boom.steps.1: each step is one of: {STEP_NAMES} (one per list entry) "
        "(config.yaml line 5)"
    ]


def test_step_field_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          boom:
            steps:
              - show_source: {scene: Main}
              - show_source: {scene: Main, source: Gif, for: 10x}
              - wait: soon
              - play_sound: {file: a.wav, volume: 3}
              - switch_scene: {back_after: 5s}
              - say:
              - toggle_filter: {source: Cam, filter: Blur, enabled: maybe}
              - show_source: Main
              - clip: true
              - just a string
        """,
    )
    assert problems(path) == [
        "effects.boom.steps.0.show_source.source: is required (config.yaml line 4)",
        "effects.boom.steps.1.show_source.for: '10x' is not a duration; use e.g. 30s, 5m, 1h "
        "(config.yaml line 5)",
        "effects.boom.steps.2.wait: 'soon' is not a duration; use e.g. 30s, 5m, 1h "
        "(config.yaml line 6)",
        "effects.boom.steps.3.play_sound.volume: unknown key (config.yaml line 7)",
        "effects.boom.steps.4.switch_scene.scene: is required (config.yaml line 8)",
        "effects.boom.steps.5.say.message: is required (config.yaml line 9)",
        "effects.boom.steps.6.toggle_filter.enabled: must be true or false (config.yaml line 10)",
        "effects.boom.steps.7: show_source takes settings like {...}, not a single value "
        "(config.yaml line 11)",
        "effects.boom.steps.8: clip takes settings like {...}, not a single value "
        "(config.yaml line 12)",
        "effects.boom.steps.9: must be a mapping (config.yaml line 13)",
    ]


def test_step_templates_use_only_known_placeholders(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          boom:
            steps:
              - set_text: {source: Banner, text: "{who} did it"}
              - say: "hi {usr}"
              - say: "oops {user"
        """,
    )
    assert problems(path) == [
        "effects.boom.steps.0.set_text.text: uses {who}; usable here: {text}, {title}, {user} "
        "(config.yaml line 4)",
        "effects.boom.steps.1.say: uses {usr}; usable here: {text}, {title}, {user} "
        "(config.yaml line 5)",
        "effects.boom.steps.2.say: is not a valid message template (expected '}' before "
        "end of string); write {{ for a brace (config.yaml line 6)",
    ]


def test_an_effect_needs_steps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          nothing: {}
        """,
    )
    assert problems(path) == ["effects.nothing.steps: is required (config.yaml line 2)"]


# ---------------------------------------------------------------------- redeem actions


def test_effect_action_needs_steps_or_an_effect_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          pop:
            steps: [wait: 1s]
        redeems:
          both:
            title: Both
            action:
              type: effect
              effect: pop
              steps: [wait: 1s]
          neither:
            title: Neither
            action: {type: effect}
        """,
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    # The wording and lines; the paths are checked by the next test.
    assert [(issue.message, issue.line) for issue in exc.value.issues] == [
        ("give either steps or the name of an effect (one of the two)", 7),
        ("give either steps or the name of an effect (one of the two)", 13),
    ]


def test_effect_action_both_or_neither_is_blamed_on_the_action(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          pop:
            steps: [wait: 1s]
        redeems:
          both:
            title: Both
            action:
              type: effect
              effect: pop
              steps: [wait: 1s]
          neither:
            title: Neither
            action: {type: effect}
        """,
    )
    assert problems(path) == [
        "redeems.both.action: give either steps or the name of an effect (one of the two) "
        "(config.yaml line 7)",
        "redeems.neither.action: give either steps or the name of an effect (one of the two) "
        "(config.yaml line 13)",
    ]


def test_names_of_wheels_and_effects_must_exist(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          confetti:
            steps: [wait: 1s]
        redeems:
          spin: {title: Spin, action: {type: wheel, wheel: big}}
          boom: {title: Boom, action: {type: effect, effect: boom}}
        wheels:
          main:
            prizes:
              - {name: Fireworks, effect: fireworks}
              - {name: Confetti, effect: confetti}
        """,
    )
    assert problems(path) == [
        "redeems.spin.action.wheel: no wheel 'big' (wheels: main) (config.yaml line 5)",
        "redeems.boom.action.effect: no effect 'boom' (effects: confetti) (config.yaml line 6)",
        "wheels.main.prizes.0.effect: no effect 'fireworks' (effects: confetti) "
        "(config.yaml line 10)",
    ]


def test_names_when_nothing_is_configured(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          spin: {title: Spin, action: {type: wheel}}
          boom: {title: Boom, action: {type: effect, effect: boom}}
        """,
    )
    assert problems(path) == [
        "redeems.spin.action.wheel: no wheel 'main' (wheels: none are configured) "
        "(config.yaml line 2)",
        "redeems.boom.action.effect: no effect 'boom' (effects: none are configured) "
        "(config.yaml line 3)",
    ]


def test_obs_actions_need_their_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          brb: {title: BRB, action: {type: obs, do: switch_scene}}
          gif: {title: Gif, action: {type: obs, do: show_source, scene: Main}}
          hide: {title: Hide, action: {type: obs, do: hide_source}}
          bad: {title: Bad, action: {type: obs, do: explode}}
          none: {title: None, action: {type: obs}}
        """,
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    # The wording and lines; the paths of the first three are checked by the next test.
    assert [(issue.message, issue.line) for issue in exc.value.issues] == [
        ("do: switch_scene needs scene", 2),
        ("do: show_source needs source", 3),
        ("do: hide_source needs scene and source", 4),
        ("must be one of 'clip', 'switch_scene', 'show_source', 'hide_source'", 5),
        ("is required", 6),
    ]
    assert [str(issue) for issue in exc.value.issues][3:] == [
        "redeems.bad.action.do: must be one of 'clip', 'switch_scene', 'show_source', "
        "'hide_source' (config.yaml line 5)",
        "redeems.none.action.do: is required (config.yaml line 6)",
    ]


def test_obs_action_problems_are_blamed_on_the_action(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          brb: {title: BRB, action: {type: obs, do: switch_scene}}
          gif: {title: Gif, action: {type: obs, do: show_source, scene: Main}}
        """,
    )
    assert problems(path) == [
        "redeems.brb.action: do: switch_scene needs scene (config.yaml line 2)",
        "redeems.gif.action: do: show_source needs source (config.yaml line 3)",
    ]


def test_an_unknown_key_in_a_sound_action_suggests_no_tts_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          honk: {title: Honk, action: {type: sound, file: honk.wav, max_char: 5}}
        """,
    )
    assert problems(path) == ["redeems.honk.action.max_char: unknown key (config.yaml line 2)"]


# ------------------------------------------------------------------------------- wheels


def test_bad_prizes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        wheels:
          main:
            prizes:
              - {name: Both, points: 5, xp: 5}
              - {name: Zero, weight: 0}
              - {name: Negative, weight: -1}
              - {name: Free, points: 0}
              - {name: All, xp: 1, effect: pop, message: hi}
              - {weight: 2}
            prize_lines: ["{who} won"]
          none: {}
        """,
    )
    assert problems(path) == [
        "wheels.main.prizes.0: a prize is one thing; this one has points and xp "
        "(config.yaml line 4)",
        "wheels.main.prizes.1.weight: must be > 0 (config.yaml line 5)",
        "wheels.main.prizes.2.weight: must be > 0 (config.yaml line 6)",
        "wheels.main.prizes.3.points: must be > 0 (config.yaml line 7)",
        "wheels.main.prizes.4: a prize is one thing; this one has xp and effect and message "
        "(config.yaml line 8)",
        # listed with the rest, though the wheel itself is invalid
        "wheels.main.prizes.4.effect: no effect 'pop' (effects: none are configured) "
        "(config.yaml line 8)",
        "wheels.main.prizes.5.name: is required (config.yaml line 9)",
        "wheels.main.prize_lines: uses {who}; usable here: {prize}, {user} (config.yaml line 10)",
        "wheels.none.prizes: is required (config.yaml line 11)",
    ]


def test_a_wheel_with_no_prizes_or_an_effect_with_no_steps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        wheels:
          empty:
            prizes: []
        effects:
          empty:
            steps: []
        """,
    )
    assert problems(path) == [
        "wheels.empty.prizes: must not be empty (config.yaml line 3)",
        "effects.empty.steps: must not be empty (config.yaml line 6)",
    ]


def test_a_bad_prize_message_is_blamed_on_the_message(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        wheels:
          main:
            prizes:
              - {name: Hi, message: "{bogus} won"}
        """,
    )
    assert problems(path) == [
        "wheels.main.prizes.0.message: uses {bogus}; usable here: {prize}, {user} "
        "(config.yaml line 4)"
    ]


def test_a_wheel_needs_a_spin_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        wheels:
          main:
            prizes: [{name: A}]
            spin_lines: []
        """,
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert [(issue.path, issue.line) for issue in exc.value.issues] == [
        ("wheels.main.spin_lines", 4)
    ]


def test_a_bad_effect_or_wheel_name_does_not_mention_commands(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          Big-Boom:
            steps: [wait: 1s]
        wheels:
          Main Wheel:
            prizes: [{name: A}]
        """,
    )
    assert problems(path) == [
        "effects.Big-Boom: must be lowercase letters, digits or _ (starting with a letter) "
        "(config.yaml line 2)",
        "wheels.Main Wheel: must be lowercase letters, digits or _ (starting with a letter) "
        "(config.yaml line 5)",
    ]


# ------------------------------------------------------------------------ queue, tts, obs


def test_queue_tts_and_obs_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queue:
          timeouts: {tts: 90s, effect: 5m}
          on_restart: retry
        tts:
          banned_words: [heck]
          prefix: "{user} writes"
          voice: en-gb
          rate: 50
          volume: 0
          keep_files: 0
          player: "mpv {file}"
        obs:
          enabled: true
          host: 10.0.0.2
          port: 65535
          timeout: 250ms
          reconnect: {attempts: 5, backoff: 500ms, max_backoff: 1m}
          start_replay_buffer: false
        """,
    )
    config = load_config(path, env={})
    timeouts = config.queue.timeouts
    assert (timeouts.tts, timeouts.wheel, timeouts.effect) == (
        timedelta(seconds=90),
        timedelta(seconds=30),
        timedelta(minutes=5),
    )
    assert config.queue.on_restart == "retry"
    tts = config.tts
    assert (tts.banned_words, tts.prefix, tts.voice) == (["heck"], "{user} writes", "en-gb")
    assert (tts.rate, tts.volume, tts.keep_files, tts.player) == (50, 0.0, 0, "mpv {file}")
    obs = config.obs
    assert (obs.enabled, obs.host, obs.port, obs.password) == (True, "10.0.0.2", 65535, None)
    assert obs.timeout == timedelta(milliseconds=250)
    assert (obs.reconnect.attempts, obs.reconnect.backoff, obs.reconnect.max_backoff) == (
        5,
        timedelta(milliseconds=500),
        timedelta(minutes=1),
    )
    assert obs.start_replay_buffer is False


def test_bad_queue_tts_and_obs_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queue:
          timeouts: {tts: 0s, wheel: -5s}
          on_restart: maybe
        tts:
          prefix: "{bogus} says"
          rate: 10
          volume: 2
          max_repeat: 11
        obs:
          port: 70000
          reconnect: {attempts: 0}
          passwrd: x
        """,
    )
    assert problems(path) == [
        "queue.timeouts.tts: must be longer than 0s (config.yaml line 2)",
        "queue.timeouts.wheel: a duration cannot be negative (got '-5s') (config.yaml line 2)",
        "queue.on_restart: must be one of 'retry', 'refund' (config.yaml line 3)",
        "tts.prefix: uses {bogus}; usable here: {user} (config.yaml line 5)",
        "tts.rate: must be >= 50 (config.yaml line 6)",
        "tts.volume: must be <= 1 (config.yaml line 7)",
        "tts.max_repeat: must be <= 10 (config.yaml line 8)",
        "obs.port: must be <= 65535 (config.yaml line 10)",
        "obs.reconnect.attempts: must be > 0 (config.yaml line 11)",
        "obs.passwrd: unknown key; did you mean 'password'? (config.yaml line 12)",
    ]


def test_more_bad_tts_and_obs_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tts:
          max_queue: 0
          max_chars: 0
          banned_words: darn
          banned_replacement: [beep]
          keep_files: -1
          voice: ""
          dir: ""
          player: ""
        obs:
          sound_source: ""
          reconnect: {backoff: soon}
          start_replay_buffer: sometimes
        """,
    )
    assert problems(path) == [
        "tts.max_queue: must be > 0 (config.yaml line 2)",
        "tts.max_chars: must be > 0 (config.yaml line 3)",
        "tts.banned_words: must be a list (config.yaml line 4)",
        "tts.banned_replacement: must be a string (config.yaml line 5)",
        "tts.keep_files: must be >= 0 (config.yaml line 6)",
        "tts.voice: must not be empty (config.yaml line 7)",
        "tts.dir: must not be empty (config.yaml line 8)",
        "tts.player: must not be empty (config.yaml line 9)",
        "obs.sound_source: must not be empty (config.yaml line 11)",
        "obs.reconnect.backoff: 'soon' is not a duration; use e.g. 30s, 5m, 1h "
        "(config.yaml line 12)",
        "obs.start_replay_buffer: must be true or false (config.yaml line 13)",
    ]


def test_tts_rate_above_the_range(tmp_path: Path) -> None:
    path = write(tmp_path, "tts: {rate: 501}\n")
    assert problems(path) == ["tts.rate: must be <= 500 (config.yaml line 1)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("obs: {port: true}", "obs.port: must be an integer (config.yaml line 1)"),
        ("tts: {max_repeat: true}", "tts.max_repeat: must be an integer (config.yaml line 1)"),
        ("tts: {volume: true}", "tts.volume: must be a number (config.yaml line 1)"),
        (
            "wheels: {main: {prizes: [{name: A, weight: true}]}}",
            "wheels.main.prizes.0.weight: must be a number (config.yaml line 1)",
        ),
    ],
)
def test_true_is_not_a_number(tmp_path: Path, text: str, expected: str) -> None:
    assert problems(write(tmp_path, text + "\n")) == [expected]


def test_obs_timeout_must_be_longer_than_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "obs: {timeout: 0s}\n")
    assert problems(path) == ["obs.timeout: must be longer than 0s (config.yaml line 1)"]


# --------------------------------------------------------------------------- obs password


def test_obs_password_from_the_environment_is_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        obs:
          enabled: true
          password: "${OBS_PASSWORD}"
        """,
    )
    config = load_config(path, env={"OBS_PASSWORD": "hunter2-obs"})
    password = config.obs.password
    assert isinstance(password, SecretStr)
    assert password.get_secret_value() == "hunter2-obs"
    assert "hunter2-obs" not in repr(password)
    assert "hunter2-obs" not in repr(config.obs)
    assert "hunter2-obs" not in str(config)


def test_a_missing_obs_password_variable_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        obs:
          enabled: true
          password: "${OBS_PASSWORD}"
        """,
    )
    assert problems(path, env={"OTHER": "x"}) == [
        "obs.password: environment variable OBS_PASSWORD is not set (config.yaml line 3)"
    ]


def test_a_missing_obs_password_is_an_error_unless_obs_is_disabled(tmp_path: Path) -> None:
    # No `enabled` key at all: not known to be disabled, so the variable is required.
    implicit = write(tmp_path, 'obs: {password: "${OBS_PASSWORD}"}\n')
    assert problems(implicit) == [
        "obs.password: environment variable OBS_PASSWORD is not set (config.yaml line 1)"
    ]
    disabled = write(tmp_path, 'obs: {enabled: false, password: "${OBS_PASSWORD}"}\n')
    assert load_config(disabled, env={}).obs.password is None


# ------------------------------------------------------------- effect_steps of actions


def test_effect_steps_of_obs_sound_and_chat_actions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          brb: {title: BRB, action: {type: obs, do: switch_scene, scene: BRB, for: 30s}}
          scene: {title: Scene, action: {type: obs, do: switch_scene, scene: Game}}
          gif: {title: Gif, action: {type: obs, do: show_source, scene: Main, source: Gif,
                                     for: 10s}}
          cam: {title: Cam, action: {type: obs, do: hide_source, scene: Main, source: Cam}}
          clip: {title: Clip, action: {type: obs, do: clip}}
          honk: {title: Honk, action: {type: sound, file: honk.wav}}
          hello: {title: Hello, action: {type: chat, message: "hello {user}!"}}
        """,
    )
    config = load_config(path, env={})
    steps = {key: config.effect_steps(redeem.action) for key, redeem in config.redeems.items()}
    assert steps == {
        "brb": [SwitchSceneStep(do="switch_scene", scene="BRB", back_after=timedelta(seconds=30))],
        "scene": [SwitchSceneStep(do="switch_scene", scene="Game")],
        "gif": [show("Main", "Gif", 10)],
        "cam": [
            HideSourceStep.model_validate({"do": "hide_source", "scene": "Main", "source": "Cam"})
        ],
        "clip": [ClipStep(do="clip")],
        "honk": [PlaySoundStep(do="play_sound", file="honk.wav")],
        "hello": [SayStep(do="say", message="hello {user}!")],
    }
    brb = config.redeems["brb"].action
    assert isinstance(brb, ObsAction) and brb.for_ == timedelta(seconds=30)
    assert brb.step() == {"switch_scene": {"scene": "BRB", "back_after": timedelta(seconds=30)}}


# ---------------------------------------------------------------------- all at once


def test_every_problem_in_the_new_sections_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        effects:
          pop:
            steps:
              - explode: 1
              - wait: soon
        wheels:
          main:
            prizes:
              - {name: A, points: 1, xp: 1}
              - {name: B, weight: 0}
        tts:
          rate: 10
        obs:
          port: 70000
        queue:
          timeouts: {tts: 0s}
          on_restart: maybe
        """,
    )
    assert problems(path) == [
        f"effects.pop.steps.0: unknown step 'explode'; steps are: {STEP_NAMES} "
        "(config.yaml line 4)",
        "effects.pop.steps.1.wait: 'soon' is not a duration; use e.g. 30s, 5m, 1h "
        "(config.yaml line 5)",
        "wheels.main.prizes.0: a prize is one thing; this one has points and xp "
        "(config.yaml line 9)",
        "wheels.main.prizes.1.weight: must be > 0 (config.yaml line 10)",
        "tts.rate: must be >= 50 (config.yaml line 12)",
        "obs.port: must be <= 65535 (config.yaml line 14)",
        "queue.timeouts.tts: must be longer than 0s (config.yaml line 16)",
        "queue.on_restart: must be one of 'retry', 'refund' (config.yaml line 17)",
    ]


def test_a_missing_name_is_listed_with_the_other_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        redeems:
          spin: {title: Spin, action: {type: wheel, wheel: big}}
        tts:
          rate: 10
        """,
    )
    assert problems(path) == [
        "redeems.spin.action.wheel: no wheel 'big' (wheels: none are configured) "
        "(config.yaml line 2)",
        "tts.rate: must be >= 50 (config.yaml line 4)",
    ]
