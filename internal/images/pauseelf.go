package images

import (
	"encoding/binary"
	"fmt"
	"runtime"
)

// PauseBinary returns the sandbox process for the node's architecture: a
// tiny static ELF executable, written here byte by byte so that a node
// needs no toolchain to make its pause image. It ignores SIGCHLD (so the
// kernel reaps every child re-parented to it when it is PID 1 of a shared
// PID namespace), exits 0 on SIGINT and SIGTERM, and otherwise sleeps in
// pause(2). Only amd64 is built in; other architectures get an error.
func PauseBinary() ([]byte, error) {
	return pauseBinaryFor(runtime.GOARCH)
}

func pauseBinaryFor(arch string) ([]byte, error) {
	if arch != "amd64" {
		return nil, fmt.Errorf("images: no built-in pause binary for %s", arch)
	}
	return pauseAMD64(), nil
}

// Linux x86-64 syscall numbers, signals and flags the pause program uses.
const (
	sysRtSigaction = 13
	sysPause       = 34
	sysExitGroup   = 231
	sigINT         = 2
	sigTERM        = 15
	sigCHLD        = 17
	sigIGN         = 1
	saRestorer     = 0x04000000
	elfBase        = 0x400000
	elfHeaderSize  = 64
	progHeaderSize = 56
)

// pauseAMD64 assembles the program:
//
//	rt_sigaction(SIGCHLD, &ignore, NULL, 8)
//	rt_sigaction(SIGTERM, &quit, NULL, 8)
//	rt_sigaction(SIGINT, &quit, NULL, 8)
//	loop: pause(); goto loop
//	handler: exit_group(0)
//
// where ignore and quit are struct kernel_sigaction {handler, flags,
// restorer, mask}. x86-64 delivers a signal only to a handler registered
// with SA_RESTORER; the handler exits, so the restorer is never used.
func pauseAMD64() []byte {
	var code []byte
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	type fixup struct {
		at     int // offset of the rel32 in code
		next   int // offset of the next instruction
		target string
	}
	var fixups []fixup
	sigaction := func(sig uint32, act string) {
		code = append(code, 0xb8) // mov eax, imm32
		code = append(code, u32(sysRtSigaction)...)
		code = append(code, 0xbf) // mov edi, imm32
		code = append(code, u32(sig)...)
		code = append(code, 0x48, 0x8d, 0x35) // lea rsi, [rip+rel32]
		fixups = append(fixups, fixup{at: len(code), next: len(code) + 4, target: act})
		code = append(code, 0, 0, 0, 0)
		code = append(code, 0x31, 0xd2) // xor edx, edx
		code = append(code, 0x41, 0xba) // mov r10d, imm32
		code = append(code, u32(8)...)  // sizeof(sigset_t)
		code = append(code, 0x0f, 0x05) // syscall
	}
	sigaction(sigCHLD, "ignore")
	sigaction(sigTERM, "quit")
	sigaction(sigINT, "quit")
	code = append(code, 0xb8) // loop: mov eax, pause
	code = append(code, u32(sysPause)...)
	code = append(code, 0x0f, 0x05) // syscall
	code = append(code, 0xeb, 0xf7) // jmp loop (-9)
	handler := len(code)
	code = append(code, 0xb8) // mov eax, exit_group
	code = append(code, u32(sysExitGroup)...)
	code = append(code, 0x31, 0xff) // xor edi, edi
	code = append(code, 0x0f, 0x05) // syscall
	for len(code)%8 != 0 {
		code = append(code, 0xcc) // int3 padding, never reached
	}
	entry := uint64(elfBase + elfHeaderSize + progHeaderSize)
	labels := map[string]int{}
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	labels["ignore"] = len(code)
	code = append(code, u64(sigIGN)...) // handler
	code = append(code, u64(0)...)      // flags
	code = append(code, u64(0)...)      // restorer
	code = append(code, u64(0)...)      // mask
	labels["quit"] = len(code)
	code = append(code, u64(entry+uint64(handler))...)
	code = append(code, u64(saRestorer)...)
	code = append(code, u64(entry+uint64(handler))...)
	code = append(code, u64(0)...)
	for _, f := range fixups {
		binary.LittleEndian.PutUint32(code[f.at:], uint32(int32(labels[f.target]-f.next)))
	}

	total := uint64(elfHeaderSize + progHeaderSize + len(code))
	var b []byte
	b = append(b, 0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* SysV */)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint16(b, 2)    // ET_EXEC
	b = binary.LittleEndian.AppendUint16(b, 0x3e) // EM_X86_64
	b = binary.LittleEndian.AppendUint32(b, 1)    // EV_CURRENT
	b = binary.LittleEndian.AppendUint64(b, entry)
	b = binary.LittleEndian.AppendUint64(b, elfHeaderSize) // program headers
	b = binary.LittleEndian.AppendUint64(b, 0)             // no section headers
	b = binary.LittleEndian.AppendUint32(b, 0)             // flags
	b = binary.LittleEndian.AppendUint16(b, elfHeaderSize)
	b = binary.LittleEndian.AppendUint16(b, progHeaderSize)
	b = binary.LittleEndian.AppendUint16(b, 1) // one program header
	b = binary.LittleEndian.AppendUint16(b, 0) // section header size
	b = binary.LittleEndian.AppendUint16(b, 0) // section headers
	b = binary.LittleEndian.AppendUint16(b, 0) // section name table
	b = binary.LittleEndian.AppendUint32(b, 1) // PT_LOAD
	b = binary.LittleEndian.AppendUint32(b, 5) // PF_R|PF_X
	b = binary.LittleEndian.AppendUint64(b, 0) // from the file's start
	b = binary.LittleEndian.AppendUint64(b, elfBase)
	b = binary.LittleEndian.AppendUint64(b, elfBase)
	b = binary.LittleEndian.AppendUint64(b, total)
	b = binary.LittleEndian.AppendUint64(b, total)
	b = binary.LittleEndian.AppendUint64(b, 0x1000)
	return append(b, code...)
}
