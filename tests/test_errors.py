"""What a user reads of an error: one line, with the operating system's reason where there is one."""

import errno

from wgan_jax.errors import first_line, write_failed


def test_a_write_failure_names_the_os_reason_however_it_arrives():
    assert str(write_failed("W/a.png", OSError(errno.ENOSPC, "No space left on device"))) == \
        "cannot write W/a.png: No space left on device"
    # tensorstore's (through orbax): a long message whose reason is a code at the end
    tensorstore = ValueError('RESOURCE_EXHAUSTED: Error writing "gen/0" in OCDBT database at local '
                             'file "W/5.orbax-checkpoint-tmp/": Failed writing: "W/d/5d7e": Failed '
                             "to write 62699 bytes to file 6: No space left on device "
                             "[os_error_code='28']")
    assert str(write_failed("a checkpoint in W", tensorstore)) == \
        "cannot write a checkpoint in W: No space left on device"
    assert str(write_failed("x", RuntimeError("disk gone\nmore"))) == "cannot write x: disk gone"


def test_the_first_line_of_an_error_or_its_type():
    assert first_line(ValueError("a\nb")) == "a"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("x" * 300), limit=10) == "x" * 10
