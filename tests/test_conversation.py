"""The guided walk by voice: when it asks again, re-asks, or stops, and a whole conversation.

The rules are tables of typed answers read by the real classifier and playbook. The
conversations are Piper-rendered answers fed through the microphone's path (`replayed`, no
pacing) with the real tiny.en model; what debrief says goes to numbered WAV files.
"""

import json

import numpy as np
import pytest

from debrief import conversation
from debrief.conversation import Companion, replayed
from debrief.guided import ASK, BEFORE, FINISH, REASK, REASK_SAME, TELL_ME, WHERE, after_answer, fix_speech
from debrief.audio import decode_audio
from debrief.errors import NoSpeechError
from debrief.recording import INTERRUPTED, Limits, replay
from debrief.store import Store
from debrief.speech import Voice
from debrief.walk import diagnose
from voices import answer

ENDED = "They said they would think about it and get back to me."
DEMO = "Before that I gave them the full demo and went over the pricing."
ISSUES = "Before that we talked about their problem with late shipments, but I never asked what it was costing them."


@pytest.fixture(scope="module")
def analyzer(playbook):
    from debrief.pipeline import Analyzer

    return Analyzer(playbook)


def walk(analyzer, answers, max_turns=8):
    """Feed typed answers to the rules as the companion does; the moves, and the diagnosis at the end."""
    moves, said, reasked = [], [], False
    for turn, text in enumerate(answers, start=1):
        said.append(text)
        move = after_answer(analyzer, said, text, reasked=reasked, turns=turn, max_turns=max_turns)
        moves.append(move.action)
        reasked = move.action == REASK_SAME
        if move.action == FINISH:
            break
    diagnosis = diagnose(analyzer.playbook, analyzer.classifier.classify("\n".join(a for a in said if a)))
    return moves, diagnosis.fix.step.id if diagnosis.fix else None


# --- the rules --------------------------------------------------------------------------------------

WALKS = [
    ("the seed's example: back to issues done, impact missed",
     [ENDED, DEMO, ISSUES], [ASK, ASK, FINISH], "second.impact"),
    ("a demo before their issues: back to a meeting earned properly",
     ["They said they'd think about it.", "Before that I jumped straight into the demo.",
      "Before that we had some small talk and they agreed to meet."], [ASK, ASK, FINISH], "second.issues"),
    ("qualified all the way back to a quantified problem: nothing to fix",
     ["We booked a follow-up meeting for next Tuesday with their CFO.",
      "Before that they told me the budget is fifty thousand.",
      "Before that I asked who else is involved in the decision and they said the CFO signs off.",
      "And before that we worked out that the late shipments cost them twenty thousand a month."],
     [ASK, ASK, ASK, FINISH], None),
    ("won: nothing to walk back from", ["They signed the contract today."], [FINISH], None),
    ("the rep says that's it", [ENDED, DEMO, "That's it."], [ASK, ASK, FINISH], "second.issues"),
    ("the rep says there was nothing before", [ENDED, "Nothing before that, really."], [ASK, FINISH], None),
    ("don't know gets one re-ask, then an answer goes on",
     [ENDED, "I don't know.", DEMO, "", ""], [ASK, REASK_SAME, ASK, REASK_SAME, FINISH], "second.issues"),
    ("silence twice: going on with what was said", [ENDED, DEMO, "", ""], [ASK, ASK, REASK_SAME, FINISH],
     "second.issues"),
    ("an admission is not a don't-know", [ENDED, "I had no idea there was a boss involved."], [ASK, ASK],
     "second.issues"),
]


@pytest.mark.parametrize("why, answers, moves, fix", WALKS, ids=[w[0] for w in WALKS])
def test_the_walk_asks_reasks_and_stops(analyzer, why, answers, moves, fix):
    assert walk(analyzer, answers) == (moves, fix)


def test_the_walk_stops_after_max_turns(analyzer):
    moves, _ = walk(analyzer, [ENDED, "Traffic was terrible on the way over.", "It was a sunny day."], max_turns=3)
    assert moves == [ASK, ASK, FINISH]


def test_the_fix_is_said_with_its_base_step_and_question(analyzer):
    diagnosis = analyzer.analyze_text("\n".join([ENDED, DEMO, ISSUES])).diagnosis
    said = fix_speech(diagnosis)
    assert said.startswith("The one step to fix is on second base: what the problem costs them.")
    assert said.endswith("Next time, ask: What is that costing you, in money or in time?")
    won = analyzer.analyze_text("They signed the contract today.").diagnosis
    assert fix_speech(won) == "You won it. Nothing to fix. Move on."


# --- whole conversations, by voice ------------------------------------------------------------------

def companion(analyzer, folder, **limits):
    limits = {"wait_for_speech": 2.0, **limits}
    return Companion(analyzer, Voice(to_dir=folder), Limits(**limits))


@pytest.mark.slow
def test_a_guided_conversation_with_a_reask_is_saved_with_its_result(analyzer, tmp_path):
    answers = [answer(ENDED), np.zeros(3 * 16000, np.float32), answer(DEMO), answer(ISSUES)]
    done = companion(analyzer, tmp_path / "said").run(replayed(answers, pace=False), guided=True,
                                                       rep="sam", deal="Acme")

    assert [t.prompt for t in done.turns] == [WHERE, BEFORE, REASK[BEFORE], BEFORE]
    assert [t.stopped_by for t in done.turns] == ["end of speech", "no speech", "end of speech", "end of speech"]
    assert done.turns[1].answer == "" and done.turns[-1].move.startswith("finish: the walk reached")
    assert done.result.diagnosis.fix.step.id == "second.impact"
    assert sorted(p.name for p in (tmp_path / "said").iterdir()) == [
        "01-prompt.wav", "02-prompt.wav", "03-reask.wav", "04-prompt.wav", "05-fix.wav"]

    # Everything said is one recording in the data folder, in the history with its result.
    assert done.recording.parent.name == "recordings" and done.recording.is_file()
    assert done.result.source == str(done.recording)
    assert done.result.transcript.duration == pytest.approx(sum(t.seconds for t in done.turns), abs=0.01)
    with Store() as store:
        [entry] = store.history(deal="Acme")
    assert (entry.path, entry.rep, entry.fix, entry.status) == (str(done.recording), "sam", "second.impact", "done")
    assert [c["prompt"] for c in entry.result["conversation"]] == [t.prompt for t in done.turns]
    # Segments are timed from the start of the recording: the last answer's start after the others.
    starts = [s.start for s in done.result.transcript.segments]
    assert starts == sorted(starts) and starts[-1] > done.turns[0].seconds + done.turns[1].seconds
    assert json.dumps(conversation.to_dict(done.result, done.turns))


QUIET = "They went quiet after the demo. I never asked about their budget."


@pytest.mark.slow
def test_a_step_nobody_mentioned_is_asked_about_before_it_is_blamed(analyzer, tmp_path):
    # The rep names a miss (the money); the walk's first candidate is a step nobody mentioned (their
    # problem). Asked, the rep says yes: the walk goes on to the next one (what it costs them), and
    # a no makes that the fix, confirmed.
    answers = [answer(QUIET), answer("Yes, their trucks keep breaking down."), answer("No, I never got to that.")]
    done = companion(analyzer, tmp_path / "said").run(replayed(answers, pace=False), deal="Acme")
    issues, impact = (analyzer.playbook.step(s).check for s in ("second.issues", "second.impact"))
    assert [t.prompt for t in done.turns] == [TELL_ME, issues, impact]
    assert [t.move for t in done.turns[1:]] == ["check second.issues: done", "check second.impact: missed"]
    diagnosis = done.result.diagnosis
    assert (diagnosis.fix.step.id, diagnosis.confirmed) == ("second.impact", True)
    assert sorted(p.name for p in (tmp_path / "said").iterdir()) == [
        "01-prompt.wav", "02-check.wav", "03-check.wav", "04-fix.wav"]
    with Store() as store:
        [entry] = store.history(deal="Acme")
    assert [c["prompt"] for c in entry.result["conversation"]] == [TELL_ME, issues, impact]
    assert entry.result["fix"]["confirmed"] is True


@pytest.mark.slow
def test_a_guided_walk_asks_about_a_silent_step_hears_yes_walks_on_and_confirms_the_no(analyzer, tmp_path):
    # Six answers: three steps back and "that's it"; the walk lands on a step nobody mentioned
    # (their problem), asks, hears yes, walks on to what it costs them, asks, hears no.
    answers = ["They went quiet after the demo.", "Before that, I never asked about their budget.",
               "Before that, the owner told me he signs off on anything like this himself.", "That's it.",
               "Yes, their trucks keep breaking down.", "No, I never asked."]
    done = companion(analyzer, tmp_path / "said").run(replayed([answer(a) for a in answers], pace=False),
                                                       guided=True)
    issues, impact = (analyzer.playbook.step(s).check for s in ("second.issues", "second.impact"))
    assert [t.prompt for t in done.turns] == [WHERE, BEFORE, BEFORE, BEFORE, issues, impact]
    assert [t.move for t in done.turns[4:]] == ["check second.issues: done", "check second.impact: missed"]
    diagnosis = done.result.diagnosis
    assert (diagnosis.fix.step.id, diagnosis.confirmed) == ("second.impact", True)

    # What was said, transcribed back with the real model.
    said = sorted((tmp_path / "said").iterdir())
    assert [f.name for f in said] == ["01-prompt.wav", "02-prompt.wav", "03-prompt.wav", "04-prompt.wav",
                                      "05-check.wav", "06-check.wav", "07-fix.wav"]
    heard = [analyzer.transcriber.transcribe(decode_audio(f)).text.lower() for f in said]
    assert "their problem" in heard[4] and "costing them" in heard[5], heard
    assert "second base" in heard[6] and "problem costs them" in heard[6], heard


@pytest.mark.slow
def test_i_dont_know_leaves_the_fix_unconfirmed(analyzer, tmp_path):
    answers = [answer(QUIET), answer("I don't remember, honestly.")]
    done = companion(analyzer, tmp_path / "said").run(replayed(answers, pace=False))
    assert [t.move for t in done.turns[1:]] == ["check second.issues: no answer"]
    diagnosis = done.result.diagnosis
    assert (diagnosis.fix.step.id, diagnosis.confirmed, diagnosis.then.step.id) == (
        "second.issues", False, "third.budget")
    assert fix_speech(diagnosis).startswith("You didn't say whether you found out what their problem is.")


@pytest.mark.slow
def test_the_analysis_of_the_saved_recording_agrees(analyzer, tmp_path):
    done = companion(analyzer, tmp_path / "said").run(replayed([answer(ENDED, 0.6, DEMO, 0.6, ISSUES)], pace=False))
    again = analyzer.analyze(done.recording)
    assert done.result.diagnosis.fix.step.id == again.diagnosis.fix.step.id == "second.impact"


@pytest.mark.slow
def test_ctrl_c_ends_the_answer_and_keeps_what_was_said(analyzer, tmp_path):
    def interrupted(audio, after):
        for index, block in enumerate(replay(audio, pace=False)):
            if index == after:
                raise KeyboardInterrupt  # how Python delivers Ctrl-C to the main thread
            yield block

    first, second = answer(ENDED), answer(DEMO, tail=5.0)
    # Ctrl-C one second after the last word, before the trailing silence would have ended the answer.
    takes = iter([replay(first, pace=False), interrupted(second, after=(len(second) - 5 * 16000) // 1600 + 10)])
    done = companion(analyzer, tmp_path / "said").run(lambda: next(takes, None), guided=True)
    assert [t.stopped_by for t in done.turns] == ["end of speech", INTERRUPTED]
    assert done.turns[-1].move == "finish: stopped with Ctrl-C"
    assert "demo" in done.turns[-1].answer.lower()


@pytest.mark.slow
def test_nothing_said_is_no_speech_and_the_recording_is_kept(analyzer, tmp_path):
    quiet = np.random.default_rng(3).normal(0, 0.0005, 4 * 16000).astype(np.float32)
    with pytest.raises(NoSpeechError) as caught:
        companion(analyzer, tmp_path / "said").run(replayed([quiet], pace=False))
    assert "no speech heard" in str(caught.value) and "\n" not in str(caught.value)
    with Store() as store:
        [entry] = store.history()
    assert entry.status == "error" and entry.result["exit_code"] == 4
    assert [p.name for p in sorted((tmp_path / "said").iterdir())] == ["01-prompt.wav", "02-nothing.wav"]


@pytest.mark.slow
def test_a_microphone_failing_mid_answer_keeps_the_audio_in_the_history(analyzer, tmp_path):
    from debrief.audio import decode_audio
    from debrief.devices import DeviceError

    def failing(audio, after):
        for index, block in enumerate(replay(audio, pace=False)):
            if index == after:
                raise DeviceError("microphone 'USB': stopped delivering audio")  # as `microphone` does
            yield block

    first = answer(ENDED)
    takes = iter([replay(first, pace=False), failing(answer(DEMO), after=25)])
    with pytest.raises(DeviceError) as caught:
        companion(analyzer, tmp_path / "said").run(lambda: next(takes, None), guided=True, deal="Acme")
    assert "stopped delivering audio; the" in str(caught.value) and "recorded so far are kept in" in str(caught.value)
    with Store() as store:
        [entry] = store.history(deal="Acme")
    assert entry.status == "error" and entry.result["exit_code"] == 3
    # The first answer (it stopped 2.5 s into its 3 s tail) and the 25 blocks of the second.
    kept = len(decode_audio(entry.path)) / 16000
    assert kept == pytest.approx((len(first) + 25 * 1600) / 16000 - 0.5, abs=0.3)
