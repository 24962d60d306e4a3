; Avacast Windows installer (bootstrap): ships the project wheel and uv.exe; at install time uv fetches
; Python 3.11, then PyTorch (the CUDA build when an NVIDIA GPU answers nvidia-smi, else the CPU build)
; and the app's other dependencies from PyPI, into a private environment under the install folder.
; Why a bootstrap: a PyInstaller payload for Windows can only be built on Windows; this one is built on
; Linux with Debian's makensis by installer/build_windows.sh, which passes the defines below.
;
; Defines: VERSION, VI_VERSION (a.b.c.d), PAYLOAD (folder with the files), WHEEL (wheel file name),
;          TORCH_VERSION, CUDA_INDEX, CPU_INDEX, OUTFILE.
; Silent install: Avacast-setup.exe /S [/CPU | /CUDA] [/D=C:\path]  (exit code 2 on failure)

Unicode true
Target amd64-unicode
SetCompressor /SOLID lzma

!include MUI2.nsh
!include LogicLib.nsh
!include nsDialogs.nsh
!include FileFunc.nsh

!define APP "Avacast"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Avacast"
!define SETTINGS_KEY "Software\Avacast"
; Disk needed during install, MiB: CUDA torch + its NVIDIA libraries unpacked, plus uv's download cache.
!define NEED_MB_CUDA 9000
!define NEED_MB_CPU 2500

Name "${APP} ${VERSION}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\Avacast"
InstallDirRegKey HKCU "${SETTINGS_KEY}" "InstallDir"
ManifestDPIAware true
BrandingText "${APP} ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VI_VERSION}"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "LegalCopyright" "GPL-3.0-or-later"

Var GpuName       ; first line of nvidia-smi's answer, "" when none answered
Var UseCuda       ; 1: CUDA build of torch, 0: CPU build
Var AccelCheckbox
Var Failed        ; the step that failed, "" while all is well
Var LogFile

!define MUI_ICON "${PAYLOAD}\avacast.ico"
!define MUI_UNICON "${PAYLOAD}\avacast.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_NOAUTOCLOSE
!define MUI_UNFINISHPAGE_NOAUTOCLOSE

!define MUI_WELCOMEPAGE_TEXT "This installs ${APP} ${VERSION} for your Windows account only (no administrator rights needed).$\r$\n$\r$\nDuring the installation ${APP} downloads Python and PyTorch from the internet: about 2.5 GB with an NVIDIA graphics card, about 300 MB without. Keep the computer online until it finishes.$\r$\n$\r$\nYour settings and avatars are kept when you uninstall, unless you choose otherwise."
!insertmacro MUI_PAGE_WELCOME
; GPL is a licence to share, not a contract to accept: show it with a plain Next button.
!define MUI_LICENSEPAGE_BUTTON "$(^NextBtn)"
!define MUI_LICENSEPAGE_TEXT_BOTTOM "${APP} is free software under the GNU GPL, version 3 or later. Click Next to continue."
!insertmacro MUI_PAGE_LICENSE "${PAYLOAD}\LICENSE-GPL-3.0.txt"
!define MUI_PAGE_HEADER_TEXT "Third-party components"
!define MUI_PAGE_HEADER_SUBTEXT "Software that ${APP} uses, and its licences."
!define MUI_LICENSEPAGE_BUTTON "$(^NextBtn)"
!define MUI_LICENSEPAGE_TEXT_TOP "These notices are also installed as THIRD_PARTY_NOTICES.txt."
!define MUI_LICENSEPAGE_TEXT_BOTTOM "Click Next to continue."
!insertmacro MUI_PAGE_LICENSE "${PAYLOAD}\THIRD_PARTY_NOTICES.txt"
!insertmacro MUI_PAGE_DIRECTORY
Page custom AccelPageCreate AccelPageLeave
!insertmacro MUI_PAGE_INSTFILES
Page custom ErrorPageCreate
!define MUI_PAGE_CUSTOMFUNCTION_PRE FinishPagePre
!define MUI_FINISHPAGE_RUN
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP} now"
!define MUI_FINISHPAGE_RUN_FUNCTION LaunchApp
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!define MUI_PAGE_HEADER_TEXT "Your settings and avatars"
!define MUI_PAGE_HEADER_SUBTEXT "They are kept unless you tick the box."
!define MUI_COMPONENTSPAGE_TEXT_TOP "The program is always removed. Tick the box to also delete your settings and avatars (%APPDATA%\Avacast and %LOCALAPPDATA%\Avacast)."
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

!include "steps.nsh"

Function .onInit
    Call DetectGpu
    ${GetParameters} $0
    ClearErrors
    ${GetOptions} $0 "/CPU" $1
    ${IfNot} ${Errors}
        StrCpy $UseCuda 0
    ${EndIf}
    ClearErrors
    ${GetOptions} $0 "/CUDA" $1
    ${IfNot} ${Errors}
        StrCpy $UseCuda 1
    ${EndIf}
FunctionEnd

; nvidia-smi ships with every NVIDIA driver (System32 on current drivers, NVSMI on old ones) and
; answering at all means the driver works, which is what the CUDA build of torch needs.
Function DetectGpu
    StrCpy $GpuName ""
    StrCpy $UseCuda 0
    StrCpy $2 "$SYSDIR\nvidia-smi.exe"
    ${IfNot} ${FileExists} $2
        StrCpy $2 "$PROGRAMFILES64\NVIDIA Corporation\NVSMI\nvidia-smi.exe"
    ${EndIf}
    ${If} ${FileExists} $2
        nsExec::ExecToStack '"$2" --query-gpu=name,driver_version --format=csv,noheader'
        Pop $0
        Pop $1
        ${If} $0 == 0
            Push $1
            Call FirstLine
            Pop $GpuName
            ${If} $GpuName != ""
                StrCpy $UseCuda 1
            ${EndIf}
        ${EndIf}
    ${EndIf}
FunctionEnd

Function AccelPageCreate
    !insertmacro MUI_HEADER_TEXT "Graphics card" "Choose the PyTorch build that fits this computer."
    nsDialogs::Create 1018
    Pop $0
    ${If} $GpuName != ""
        ${NSD_CreateLabel} 0 0 100% 60u "Found an NVIDIA graphics card: $GpuName (name, driver).$\r$\n$\r$\n${APP} will install PyTorch with CUDA (about 2.5 GB download) so it can animate your portrait in real time. It needs an NVIDIA driver for CUDA 12.x (version 570 or newer recommended)."
        Pop $0
        ${NSD_CreateCheckbox} 0 70u 100% 12u "Install the CPU-only build instead (smaller, but too slow for live video)"
        Pop $AccelCheckbox
        ${If} $UseCuda == 0
            ${NSD_Check} $AccelCheckbox
        ${EndIf}
    ${Else}
        ${NSD_CreateLabel} 0 0 100% 60u "No NVIDIA graphics card answered (nvidia-smi was not found or failed).$\r$\n$\r$\n${APP} will install the CPU build of PyTorch (about 300 MB download). Offline rendering works on the CPU, slowly; live video needs an NVIDIA card with a current driver."
        Pop $0
        ${NSD_CreateCheckbox} 0 70u 100% 12u "Install the CUDA build anyway (I will install the NVIDIA driver later)"
        Pop $AccelCheckbox
        ${If} $UseCuda == 1
            ${NSD_Check} $AccelCheckbox
        ${EndIf}
    ${EndIf}
    nsDialogs::Show
FunctionEnd

Function AccelPageLeave
    ${NSD_GetState} $AccelCheckbox $0
    ${If} $GpuName != ""
        ${If} $0 == ${BST_CHECKED}
            StrCpy $UseCuda 0
        ${Else}
            StrCpy $UseCuda 1
        ${EndIf}
    ${Else}
        ${If} $0 == ${BST_CHECKED}
            StrCpy $UseCuda 1
        ${Else}
            StrCpy $UseCuda 0
        ${EndIf}
    ${EndIf}
FunctionEnd

Section "-Avacast" SecMain
    SetShellVarContext current
    StrCpy $Failed ""
    StrCpy $LogFile "$INSTDIR\install.log"
    Call CheckDiskSpace
    ${If} $Failed != ""
        Goto done
    ${EndIf}

    DetailPrint "Copying the installer payload..."
    SetOutPath "$INSTDIR\payload"
    File "${PAYLOAD}\${WHEEL}"
    File "${PAYLOAD}\uv.exe"
    File "${PAYLOAD}\requirements-app.txt"
    SetOutPath "$INSTDIR"
    File "${PAYLOAD}\LICENSE-GPL-3.0.txt"
    File "${PAYLOAD}\THIRD_PARTY_NOTICES.txt"
    File "${PAYLOAD}\avacast.ico"
    File "${PAYLOAD}\launch.pyw"
    ; Written first, so that even a failed install can be removed from "Installed apps".
    WriteUninstaller "$INSTDIR\uninstall.exe"
    Call WriteUninstallEntry

    Call CreateEnvironment
    ${If} $Failed != ""
        Goto done
    ${EndIf}

    CreateShortcut "$SMPROGRAMS\${APP}.lnk" "$INSTDIR\env\Scripts\pythonw.exe" '"$INSTDIR\launch.pyw"' "$INSTDIR\avacast.ico"
    CreateShortcut "$DESKTOP\${APP}.lnk" "$INSTDIR\env\Scripts\pythonw.exe" '"$INSTDIR\launch.pyw"' "$INSTDIR\avacast.ico"
    WriteRegStr HKCU "${SETTINGS_KEY}" "InstallDir" "$INSTDIR"
    ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
    WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" $0
    DetailPrint "${APP} is installed."

  done:
    Push $LogFile
    Call DumpLog
    ${If} $Failed != ""
        SetErrorLevel 2
        ${If} ${Silent}
            Abort
        ${EndIf}
    ${EndIf}
SectionEnd

Function WriteUninstallEntry
    WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP}"
    WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
    WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "Avacast developers"
    WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\avacast.ico"
    WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
    WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
    WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
    WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
    WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
FunctionEnd

; Shown only after a failed step: what failed, the likely causes, where the log is.
Function ErrorPageCreate
    ${If} $Failed == ""
        Abort
    ${EndIf}
    !insertmacro MUI_HEADER_TEXT "Installation failed" "${APP} could not be set up."
    nsDialogs::Create 1018
    Pop $0
    ${NSD_CreateLabel} 0 0 100% 100u "This step failed: $Failed$\r$\n$\r$\nCommon causes: no internet connection, or a proxy or firewall blocking pypi.org, download.pytorch.org or github.com (Python is downloaded from there); not enough free disk space; antivirus software blocking uv.exe.$\r$\n$\r$\nFix the cause and run this installer again: it reuses what it already downloaded. The full log is in:$\r$\n$LogFile"
    Pop $0
    ${NSD_CreateButton} 0 110u 120u 14u "Open the log"
    Pop $0
    ${NSD_OnClick} $0 OpenLog
    GetDlgItem $0 $HWNDPARENT 1
    SendMessage $0 ${WM_SETTEXT} 0 "STR:$(^CloseBtn)"
    nsDialogs::Show
FunctionEnd

Function OpenLog
    ExecShell "open" "$LogFile"
FunctionEnd

Function FinishPagePre
    ${If} $Failed != ""
        Quit
    ${EndIf}
FunctionEnd

Function LaunchApp
    Exec '"$INSTDIR\env\Scripts\pythonw.exe" "$INSTDIR\launch.pyw"'
FunctionEnd

; ---------------------------------------------------------------- uninstaller
Section "-un.Avacast" SecUnMain
    SetShellVarContext current
    Delete "$SMPROGRAMS\${APP}.lnk"
    Delete "$DESKTOP\${APP}.lnk"
    ; Only what the installer created: the install folder may have been chosen next to user files.
    RMDir /r "$INSTDIR\env"
    RMDir /r "$INSTDIR\python"
    RMDir /r "$INSTDIR\payload"
    RMDir /r "$INSTDIR\uv-cache"
    Delete "$INSTDIR\LICENSE-GPL-3.0.txt"
    Delete "$INSTDIR\THIRD_PARTY_NOTICES.txt"
    Delete "$INSTDIR\avacast.ico"
    Delete "$INSTDIR\launch.pyw"
    Delete "$INSTDIR\install.log"
    Delete "$INSTDIR\uninstall.exe"
    RMDir "$INSTDIR"
    DeleteRegKey HKCU "${UNINST_KEY}"
    DeleteRegKey HKCU "${SETTINGS_KEY}"
SectionEnd

; Unticked by default, and so never run by a silent uninstall: user data survives unless asked.
Section /o "un.Delete my settings and avatars" SecUnData
    SetShellVarContext current
    RMDir /r "$APPDATA\Avacast"
    RMDir /r "$LOCALAPPDATA\Avacast"
SectionEnd
