"""Stop signals: SIGTERM/SIGHUP stop like Ctrl-C, once, and what was ignored stays ignored."""

import os
import signal
import time

import pytest

from autolambda.base.signals import Terminated, exit_code, stop_signals_as_interrupt


def test_sigterm_raises_terminated_and_a_second_signal_cannot_cut_the_clean_up():
    before = signal.getsignal(signal.SIGTERM)
    cleaned = False
    with pytest.raises(Terminated) as caught:
        with stop_signals_as_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the signal arrives at once; this only bounds a failure
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # ignored while cleaning up
                os.kill(os.getpid(), signal.SIGINT)
                cleaned = True
    assert cleaned and exit_code(caught.value) == 143 and caught.value.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before  # restored on the way out


def test_a_signal_started_as_ignored_stays_ignored():
    """`nohup` sets SIGHUP to ignore: closing the terminal must not stop the run."""
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # nothing happens
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGHUP, old)


def test_ctrl_c_is_a_plain_keyboard_interrupt():
    # A background job (CI) may start with SIGINT ignored: the default first, as in a terminal.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            with stop_signals_as_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the signal arrives at once; this only bounds a failure
    finally:
        signal.signal(signal.SIGINT, old)
    assert not isinstance(caught.value, Terminated) and exit_code(caught.value) == 130
