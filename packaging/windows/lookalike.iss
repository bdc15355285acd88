; Lookalike's Windows installer (Inno Setup 6), made from the one-folder bundle.
;
; On Windows, from the repository root:
;   python packaging\build.py          (dist\lookalike: lookalike.exe and lookalike-desktop.exe)
;   iscc /DAppVersion=0.1.0 packaging\windows\lookalike.iss
; The version is lookalike.__version__ (python -c "import lookalike; print(lookalike.__version__)").
; Result: dist\Lookalike-<version>-windows-x64-setup.exe. Not built on the project's (Linux) machines.
;
; It installs for the current user by default (no administrator needed), adds Lookalike to the
; Start menu, and offers it in "Open with" for photos without taking over their default app.
; Uninstalling leaves the user's libraries (%LOCALAPPDATA%\Lookalike) alone: they are the user's data.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z packaging\windows\lookalike.iss
#endif
#define Root "..\.."

[Setup]
AppId=io.github.lookalike.Lookalike
AppName=Lookalike
AppVersion={#AppVersion}
AppVerName=Lookalike {#AppVersion}
AppPublisher=The Lookalike contributors
AppPublisherURL=https://github.com/lookalike/lookalike
DefaultDirName={autopf}\Lookalike
DefaultGroupName=Lookalike
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\dist
OutputBaseFilename=Lookalike-{#AppVersion}-windows-x64-setup
SetupIconFile={#Root}\build\icons\lookalike.ico
UninstallDisplayIcon={app}\lookalike-desktop.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#Root}\dist\lookalike\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Lookalike"; Filename: "{app}\lookalike-desktop.exe"
Name: "{autodesktop}\Lookalike"; Filename: "{app}\lookalike-desktop.exe"; Tasks: desktopicon

[Registry]
; "Open with": a ProgID that hands the photo to the window as an image query ...
Root: HKA; Subkey: "Software\Classes\Lookalike.Photo"; ValueType: string; ValueData: "Photo"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Lookalike.Photo"; ValueType: string; ValueName: "FriendlyTypeName"; ValueData: "Photo (find look-alikes)"
Root: HKA; Subkey: "Software\Classes\Lookalike.Photo\DefaultIcon"; ValueType: string; ValueData: "{app}\lookalike-desktop.exe,0"
Root: HKA; Subkey: "Software\Classes\Lookalike.Photo\shell\open\command"; ValueType: string; ValueData: """{app}\lookalike-desktop.exe"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "Lookalike"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\shell\open\command"; ValueType: string; ValueData: """{app}\lookalike-desktop.exe"" ""%1"""
; ... offered for each photo type (bundle_rules.IMAGE_EXTENSIONS), the default app left as it is.
Root: HKA; Subkey: "Software\Classes\.jpg\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpeg\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.png\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.webp\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tif\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tiff\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.bmp\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.gif\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.heic\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.heif\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.avif\OpenWithProgids"; ValueType: string; ValueName: "Lookalike.Photo"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".jpg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".jpeg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".png"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".webp"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".tif"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".tiff"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".bmp"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".gif"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".heic"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".heif"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\lookalike-desktop.exe\SupportedTypes"; ValueType: string; ValueName: ".avif"; ValueData: ""

[Run]
Filename: "{app}\lookalike-desktop.exe"; Description: "{cm:LaunchProgram,Lookalike}"; Flags: nowait postinstall skipifsilent
