; Install-time steps of the Avacast bootstrap installer (included by avacast.nsi).
; Each step prints what it does in the details list (the progress page), runs one command with its
; output streamed there, and on failure records its name in $Failed for the error page.

!define UV '"$INSTDIR\payload\uv.exe" --no-progress'
!define ENV_PY "$INSTDIR\env\Scripts\python.exe"

; RunStep "what the user reads" "command line"
!macro RunStep LABEL CMD
    ${If} $Failed == ""
        DetailPrint "${LABEL}"
        nsExec::ExecToLog `${CMD}`
        Pop $0
        ${If} $0 != 0
            StrCpy $Failed "${LABEL} (exit code $0)"
            DetailPrint "FAILED: ${LABEL} (exit code $0)"
        ${EndIf}
    ${EndIf}
!macroend

!macro SetEnv NAME VALUE
    System::Call 'Kernel32::SetEnvironmentVariable(t "${NAME}", t "${VALUE}") i'
!macroend

Function CheckDiskSpace
    ${GetRoot} "$INSTDIR" $1
    ${DriveSpace} "$1\" "/D=F /S=M" $0
    ${If} $UseCuda == 1
        StrCpy $2 ${NEED_MB_CUDA}
    ${Else}
        StrCpy $2 ${NEED_MB_CPU}
    ${EndIf}
    ${If} $0 < $2
        StrCpy $Failed "checking free disk space: $1 has $0 MB free, the installation needs about $2 MB"
        DetailPrint "FAILED: $Failed"
    ${EndIf}
FunctionEnd

Function CreateEnvironment
    ; uv keeps everything inside the install folder: its Python, its cache (removed at the end), and it
    ; ignores any uv.toml or system Python of the user, so the result does not depend on the machine.
    !insertmacro SetEnv "UV_PYTHON_INSTALL_DIR" "$INSTDIR\python"
    !insertmacro SetEnv "UV_CACHE_DIR" "$INSTDIR\uv-cache"
    !insertmacro SetEnv "UV_PYTHON_PREFERENCE" "only-managed"
    !insertmacro SetEnv "UV_NO_CONFIG" "1"
    !insertmacro SetEnv "UV_LINK_MODE" "copy"

    ${If} $UseCuda == 1
        StrCpy $3 "${CUDA_INDEX}"
        StrCpy $4 "CUDA"
    ${Else}
        StrCpy $3 "${CPU_INDEX}"
        StrCpy $4 "CPU"
    ${EndIf}

    !insertmacro RunStep "Step 1 of 6: downloading Python 3.11" '${UV} python install 3.11'
    !insertmacro RunStep "Step 2 of 6: creating the environment" '${UV} venv --clear --python 3.11 "$INSTDIR\env"'
    !insertmacro RunStep "Step 3 of 6: downloading PyTorch ${TORCH_VERSION} ($4 build; this is the long one)" \
        '${UV} pip install --python "${ENV_PY}" "torch==${TORCH_VERSION}" --index-url $3'
    !insertmacro RunStep "Step 4 of 6: installing Avacast and its libraries" \
        '${UV} pip install --python "${ENV_PY}" "$INSTDIR\payload\${WHEEL}" -r "$INSTDIR\payload\requirements-app.txt"'
    !insertmacro RunStep "Step 5 of 6: checking PyTorch" \
        `"${ENV_PY}" -c "import torch; print('torch', torch.__version__, 'CUDA available:', torch.cuda.is_available())"`
    ; The app's own self-test (default model, a few frames, no window) proves the install end to end.
    !insertmacro SetEnv "QT_QPA_PLATFORM" "offscreen"
    !insertmacro RunStep "Step 6 of 6: running the Avacast self-test" '"$INSTDIR\env\Scripts\avacast.exe" app --self-test'
    System::Call 'Kernel32::SetEnvironmentVariable(t "QT_QPA_PLATFORM", p 0) i'
    DetailPrint "Removing the download cache..."
    RMDir /r "$INSTDIR\uv-cache"
FunctionEnd

; Push "text"; Call FirstLine; Pop first line without its line break.
Function FirstLine
    Exch $0
    Push $1
    Push $2
    StrCpy $2 0
  loop:
    StrCpy $1 $0 1 $2
    ${If} $1 == ""
    ${OrIf} $1 == "$\r"
    ${OrIf} $1 == "$\n"
        StrCpy $0 $0 $2
        Goto end
    ${EndIf}
    IntOp $2 $2 + 1
    Goto loop
  end:
    Pop $2
    Pop $1
    Exch $0
FunctionEnd

; Push "path"; Call DumpLog: writes the details list (the visible install log) to a file.
!ifndef LVM_GETITEMCOUNT
    !define LVM_GETITEMCOUNT 0x1004
!endif
!ifndef LVM_GETITEMTEXTW
    !define LVM_GETITEMTEXTW 0x1073
!endif
Function DumpLog
    Exch $5
    Push $0
    Push $1
    Push $2
    Push $3
    Push $4
    Push $6
    FindWindow $0 "#32770" "" $HWNDPARENT
    GetDlgItem $0 $0 1016
    StrCmp $0 0 exit
    FileOpen $5 $5 "w"
    StrCmp $5 "" exit
    FileWriteWord $5 0xFEFF  ; UTF-16LE byte order mark, so Notepad reads the text right
    SendMessage $0 ${LVM_GETITEMCOUNT} 0 0 $6
    System::Call '*(&t${NSIS_MAX_STRLEN})p.r3'
    StrCpy $2 0
    System::Call "*(i, i, i, i, i, p, i, i, i) p (0, 0, 0, 0, 0, r3, ${NSIS_MAX_STRLEN}) .r1"
  loop:
    StrCmp $2 $6 done
    System::Call "User32::SendMessage(p, i, p, p) p ($0, ${LVM_GETITEMTEXTW}, $2, r1)"
    System::Call "*$3(&t${NSIS_MAX_STRLEN} .r4)"
    FileWriteUTF16LE $5 "$4$\r$\n"
    IntOp $2 $2 + 1
    Goto loop
  done:
    FileClose $5
    System::Free $1
    System::Free $3
  exit:
    Pop $6
    Pop $4
    Pop $3
    Pop $2
    Pop $1
    Pop $0
    Pop $5
FunctionEnd
