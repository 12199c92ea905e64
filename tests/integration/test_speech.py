"""Text-to-speech for real: espeak-ng renders every WAV here, and real processes play them.

Nothing is mocked, and nothing is skipped: espeak-ng is a system package ``scripts/setup``
installs, and without it these fail with the message a streamer would see. The one
process-wide espeak engine is shared by every Speaker in these tests, which is itself part
of what is tested (renders never overlap, whichever Speaker asks).
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import sys
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pixelbot.config.queue import TtsSettings
from pixelbot.economy.payloads import payload_of
from pixelbot.errors import SpeechFailed
from pixelbot.integrations.player import AudioPlayer
from pixelbot.integrations.speech import Speaker
from pixelbot.queue.worker import Job
from pixelbot.queue.workers.tts import TtsWorker

WorkerFactory = Callable[..., TtsWorker]
SENTENCE = "Thanks for the follow, welcome to the stream!"
LONG_TEXT = "This is a fairly long sentence that keeps going and going. " * 60


@pytest.fixture
async def speaker() -> AsyncIterator[Speaker]:
    speaking = Speaker(voice=None, rate=175, volume=1.0)
    yield speaking
    await speaking.close()


def wav_frames(path: Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes(), audio.getframerate()


def python_command(script: str, *args: str) -> str:
    """A player setting that runs ``script`` with this Python; ``{file}`` comes last."""
    quoted = " ".join(shlex.quote(arg) for arg in args)
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {quoted} {{file}}"


async def nothing_to_say(line: str) -> None:
    return None


def tts_job(item_id: int, text: str | None, *, name: str = "alice", **action: Any) -> Job:
    payload = {
        "text": text,
        "title": "Text-to-Speech",
        "action": {"type": "tts", "max_chars": 200, "prefix_username": True, **action},
        "viewer": {"name": name, "login": name.lower()},
    }
    typed = payload_of("tts", payload)
    return Job(item_id, "tts", typed, user_id=1, attempts=1, say=nothing_to_say)


@pytest.fixture
async def worker_factory(tmp_path: Path) -> AsyncIterator[WorkerFactory]:
    """Make TtsWorkers writing to tmp_path/tts, playing nothing unless told; closed after."""
    made: list[TtsWorker] = []

    def make(**settings: Any) -> TtsWorker:
        tts = TtsSettings(**{"dir": str(tmp_path / "tts"), "player": "none", **settings})
        speaker = Speaker(voice=tts.voice, rate=tts.rate, volume=tts.volume)
        player = AudioPlayer.from_setting(tts.player)
        made.append(TtsWorker(tts, speaker, player, base_dir=tmp_path))
        return made[-1]

    yield make
    for worker in made:
        await worker.close()


# --- Speaker ---------------------------------------------------------------------------


async def test_renders_a_valid_wav(speaker: Speaker, tmp_path: Path) -> None:
    path = tmp_path / "hello.wav"

    seconds = await speaker.render(SENTENCE, path)

    assert path.read_bytes()[:4] == b"RIFF"
    frames, rate = wav_frames(path)
    assert frames > 0
    assert seconds == pytest.approx(frames / rate)
    assert seconds > 0.2


async def test_nothing_is_printed_to_stdout(
    speaker: Speaker, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    await speaker.render(SENTENCE, tmp_path / "quiet.wav")

    out, _ = capfd.readouterr()
    assert out == ""


async def test_renders_back_to_back(speaker: Speaker, tmp_path: Path) -> None:
    first = await speaker.render("first message", tmp_path / "1.wav")
    second = await speaker.render("the second message is longer", tmp_path / "2.wav")

    assert 0 < first < second
    assert wav_frames(tmp_path / "1.wav")[0] > 0


async def test_concurrent_renders_are_serialised(speaker: Speaker, tmp_path: Path) -> None:
    texts = [" ".join(["word"] * n) for n in (1, 3, 6, 10, 15)]
    alone = [
        await speaker.render(text, tmp_path / f"alone-{i}.wav") for i, text in enumerate(texts)
    ]

    together = await asyncio.gather(
        *(speaker.render(text, tmp_path / f"together-{i}.wav") for i, text in enumerate(texts))
    )

    # each file holds its own text, whole: none was cut short or got another's audio. (Not
    # exactly equal: espeak-ng's timing of a text shifts a little with what it said before.)
    assert list(together) == pytest.approx(alone, rel=0.1)
    assert alone == sorted(alone)


async def test_two_speakers_share_the_engine_safely(tmp_path: Path) -> None:
    american = Speaker(voice="en-us", rate=175, volume=1.0)
    scottish = Speaker(voice="English (Scotland)", rate=300, volume=0.5)
    try:
        results = await asyncio.gather(
            *(
                speaker.render(SENTENCE, tmp_path / f"{i}-{n}.wav")
                for n in range(3)
                for i, speaker in enumerate((american, scottish))
            )
        )
    finally:
        await american.close()
        await scottish.close()

    # each speaker's own voice and rate, every time: they never overlapped
    american_seconds, scottish_seconds = results[0::2], results[1::2]
    assert american_seconds == pytest.approx([american_seconds[0]] * 3, abs=0.01)
    assert scottish_seconds == pytest.approx([scottish_seconds[0]] * 3, abs=0.01)
    assert scottish_seconds[0] < american_seconds[0] * 0.75  # 300 words a minute, not 175


async def test_an_unknown_voice_is_refused_with_a_short_list(tmp_path: Path) -> None:
    speaker = Speaker(voice="en-klingon", rate=175, volume=1.0)
    try:
        with pytest.raises(
            SpeechFailed, match="no voice named 'en-klingon'; installed: "
        ) as caught:
            await speaker.render(SENTENCE, tmp_path / "never.wav")
        with pytest.raises(SpeechFailed, match="no voice named"):
            await speaker.start()
    finally:
        await speaker.close()

    assert len(str(caught.value)) < 160
    assert "gmw/en" in str(caught.value)  # the closest names are offered
    assert not (tmp_path / "never.wav").exists()


@pytest.mark.parametrize("voice", ["gmw/en-us", "en-us", "English (America)", "ENGLISH (AMERICA)"])
async def test_a_voice_is_found_by_id_language_or_name(voice: str, tmp_path: Path) -> None:
    speaker = Speaker(voice=voice, rate=175, volume=1.0)
    try:
        assert await speaker.render("hello", tmp_path / "voice.wav") > 0
    finally:
        await speaker.close()


async def test_lists_installed_voices(speaker: Speaker) -> None:
    voices = await speaker.voices()

    assert "gmw/en-us" in voices
    assert len(voices) > 10


async def test_empty_text_is_refused(speaker: Speaker, tmp_path: Path) -> None:
    with pytest.raises(SpeechFailed, match="nothing to say"):
        await speaker.render("   ", tmp_path / "empty.wav")


async def test_an_unwritable_file_fails_instead_of_hanging(
    speaker: Speaker, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")

    with pytest.raises(SpeechFailed, match="cannot write the speech file"):
        await speaker.render(SENTENCE, not_a_dir / "x.wav")
    assert await speaker.render(SENTENCE, tmp_path / "after.wav") > 0  # still works


async def test_an_overdue_render_makes_the_next_fail_fast_until_it_ends(tmp_path: Path) -> None:
    speaker = Speaker(voice=None, rate=175, volume=1.0, timeout=0.05)
    try:
        with pytest.raises(SpeechFailed, match=r"took longer than 0\.05s"):
            await speaker.render(LONG_TEXT, tmp_path / "long.wav")  # ~0.4 s of work

        with pytest.raises(SpeechFailed, match="still busy"):
            await speaker.render("next", tmp_path / "next.wav")

        for _ in range(100):  # the long render ends on its own; then speech works again
            await asyncio.sleep(0.05)
            try:
                assert await speaker.render("next", tmp_path / "next.wav") > 0
                break
            except SpeechFailed as failed:
                assert "still busy" in str(failed)
        else:
            pytest.fail("speech never recovered")
    finally:
        await speaker.close()
    assert wav_frames(tmp_path / "long.wav")[0] > 0  # the overdue render did finish its file


async def test_a_closed_speaker_refuses(tmp_path: Path) -> None:
    speaker = Speaker(voice=None, rate=175, volume=1.0)
    await speaker.render("hi", tmp_path / "hi.wav")
    await speaker.close()
    await speaker.close()  # twice is fine

    with pytest.raises(SpeechFailed, match="shut down"):
        await speaker.render("hi", tmp_path / "hi.wav")


# --- TtsWorker -------------------------------------------------------------------------


async def test_worker_speaks_the_filtered_text(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory(banned_words=["darn"])

    done = await worker.perform(
        tts_job(7, "hello darn chat soooooo hype!!!!!! https://example.com/x LUL LUL LUL")
    )

    spoken = "alice says, hello chat sooo hype!!! LUL LUL"
    path = tmp_path / "tts" / "tts-7.wav"
    assert done.result["spoken"] == spoken
    assert done.result["file"] == str(path)
    assert done.result["seconds"] == round(wav_frames(path)[0] / wav_frames(path)[1], 2)
    assert done.result["seconds"] > 1
    assert done.summary == f"#7 spoke tts-7.wav: {spoken}"


async def test_worker_resolves_a_relative_dir_against_the_base_dir(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory(dir="voice/files")

    done = await worker.perform(tts_job(1, "hi"))

    assert done.result["file"] == str(tmp_path / "voice" / "files" / "tts-1.wav")
    assert worker.directory == tmp_path / "voice" / "files"


@pytest.mark.parametrize(("action_max", "settings_max"), [(20, 200), (200, 20), (20, 20)])
async def test_worker_cuts_long_text_at_the_smaller_limit(
    worker_factory: WorkerFactory, action_max: int, settings_max: int
) -> None:
    worker = worker_factory(max_chars=settings_max)
    text = "the quick brown fox jumps over the lazy dog " * 5

    done = await worker.perform(tts_job(1, text, max_chars=action_max, prefix_username=False))

    assert done.result["spoken"] == "the quick brown fox"
    assert len(done.result["spoken"]) <= 20


async def test_worker_never_speaks_a_banned_word(worker_factory: WorkerFactory) -> None:
    worker = worker_factory(banned_words=["heck", "go away"], banned_replacement="beep")

    done = await worker.perform(tts_job(1, "HECK! go, away now. heckler", name="Heck"))

    assert done.result["spoken"] == "beep says, beep! beep now. heckler"


async def test_worker_filters_the_viewer_name(worker_factory: WorkerFactory) -> None:
    worker = worker_factory(banned_words=["darn"], prefix="{user} asks")

    by_link = await worker.perform(tts_job(1, "hi", name="example.com"))
    by_banned = await worker.perform(tts_job(2, "hi", name="Darn"))

    assert by_link.result["spoken"] == "someone asks, hi"
    assert by_banned.result["spoken"] == "someone asks, hi"


async def test_worker_without_the_name_prefix(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()

    done = await worker.perform(tts_job(1, "just this", prefix_username=False))

    assert done.result["spoken"] == "just this"


@pytest.mark.parametrize("text", ["!!!! ???", "https://example.com/spam", "darn", "", None])
async def test_worker_fails_when_nothing_is_left(
    worker_factory: WorkerFactory, tmp_path: Path, text: str | None
) -> None:
    worker = worker_factory(banned_words=["darn"])

    with pytest.raises(SpeechFailed, match=r"^nothing left to say after the filter$"):
        await worker.perform(tts_job(1, text))

    assert not (tmp_path / "tts" / "tts-1.wav").exists()


async def test_worker_keeps_only_the_newest_files(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory(keep_files=2)
    (tmp_path / "tts").mkdir()
    (tmp_path / "tts" / "other.wav").write_bytes(b"not ours")

    for item_id in range(1, 5):
        await worker.perform(tts_job(item_id, f"message {item_id}"))

    names = sorted(path.name for path in (tmp_path / "tts").iterdir())
    assert names == ["other.wav", "tts-3.wav", "tts-4.wav"]


async def test_worker_keeps_every_file_when_keep_files_is_zero(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory(keep_files=0)

    for item_id in range(1, 4):
        await worker.perform(tts_job(item_id, "hi"))

    assert len(list((tmp_path / "tts").glob("tts-*.wav"))) == 3


async def test_worker_plays_the_file(worker_factory: WorkerFactory, tmp_path: Path) -> None:
    played = tmp_path / "played.txt"
    script = "import sys, wave; wave.open(sys.argv[2]); open(sys.argv[1], 'w').write(sys.argv[2])"
    worker = worker_factory(player=python_command(script, str(played)))

    done = await worker.perform(tts_job(3, "play me"))

    assert played.read_text() == done.result["file"]


# --- AudioPlayer -----------------------------------------------------------------------


async def test_player_none_plays_nothing(tmp_path: Path) -> None:
    player = AudioPlayer.from_setting("none")

    await player.play(tmp_path / "missing.wav")

    assert player.name == "none"


def test_player_auto_picks_an_installed_player() -> None:
    installed = [name for name in ("paplay", "aplay", "ffplay") if shutil.which(name)]

    assert AudioPlayer.from_setting("auto").name == (installed[0] if installed else "none")


async def test_player_runs_the_command_with_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    player = AudioPlayer.from_setting(
        python_command("import sys; open(sys.argv[1], 'w').write(sys.argv[2])", str(out))
    )

    await player.play(tmp_path / "a file with spaces.wav")

    assert out.read_text() == str(tmp_path / "a file with spaces.wav")
    assert player.name == Path(sys.executable).name


async def test_player_puts_the_file_where_the_template_says(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    setting = f"sh -c 'printf %s \"$1\" > {shlex.quote(str(out))}' player --file={{file}}"

    await AudioPlayer.from_setting(setting).play(tmp_path / "x.wav")

    assert out.read_text() == f"--file={tmp_path / 'x.wav'}"


async def test_a_command_without_the_placeholder_gets_the_file_last(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    script = "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))"
    setting = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(out))}"

    await AudioPlayer.from_setting(setting).play(tmp_path / "x.wav")

    assert out.read_text() == str(tmp_path / "x.wav")


async def test_player_failure_is_reported(tmp_path: Path) -> None:
    player = AudioPlayer.from_setting(python_command("raise SystemExit(3)"))

    with pytest.raises(SpeechFailed, match=r"^the audio player failed \(exit 3\)$"):
        await player.play(tmp_path / "x.wav")


async def test_a_missing_player_is_reported(tmp_path: Path) -> None:
    player = AudioPlayer.from_setting("no-such-player-here {file}")

    with pytest.raises(SpeechFailed, match="'no-such-player-here' is not installed"):
        await player.play(tmp_path / "x.wav")


def process_is_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie no longer plays anything


async def test_cancelling_play_kills_the_player_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # a shell that starts the "player" as its child: the whole group must die
    setting = f"sh -c 'sleep 30 & echo $! > {shlex.quote(str(pid_file))}; wait' player {{file}}"
    playing = asyncio.create_task(AudioPlayer.from_setting(setting).play(tmp_path / "x.wav"))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    child = int(pid_file.read_text())

    playing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await playing

    for _ in range(200):
        if process_is_gone(child):
            break
        await asyncio.sleep(0.01)
    assert process_is_gone(child)
